from __future__ import annotations

import argparse

import pytest

from attribid.runtime import settings as s


def parse(argv, environ=None):
    parser = argparse.ArgumentParser()
    s.add_arguments(parser)
    return s.from_sources(parser.parse_args(argv), environ or {})


def test_flags_beat_environment_beats_defaults():
    got = parse(["--max-batch", "8"], {"ATTRIBID_MAX_BATCH": "16", "ATTRIBID_GRACE_S": "2.5",
                                       "ATTRIBID_LOG_CALLS": "yes"})
    assert got.max_batch == 8 and got.grace_s == 2.5 and got.log_calls is True
    assert parse([]).max_batch == s.Settings().max_batch


def test_every_field_has_a_flag_with_help():
    parser = argparse.ArgumentParser()
    s.add_arguments(parser)
    helps = {a.dest: a.help for a in parser._actions}
    for f in s.Settings.__dataclass_fields__:
        assert f in helps and len(helps[f]) > 30, f


@pytest.mark.parametrize("argv, env, message", [
    (["--max-batch", "0"], {}, "max_batch"),
    (["--address", "nohost"], {}, "address"),
    (["--shed-with", "drop"], {}, "shed_with"),
    ([], {"ATTRIBID_MAX_QUEUE": "many"}, "ATTRIBID_MAX_QUEUE"),
    (["--workers", "2", "--address", "127.0.0.1:0"], {}, "fixed port"),
])
def test_bad_settings_name_the_setting(argv, env, message):
    with pytest.raises(ValueError, match=message):
        parse(argv, env)
