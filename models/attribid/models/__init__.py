"""The attribution network and the batch commands: simulate, train, attribute, evaluate."""
