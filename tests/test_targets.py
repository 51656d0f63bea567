import dataclasses

import pytest
from click.testing import CliRunner

from placer.cli.main import cli
from placer.errors import UserError
from placer.targets import load_target
from placer.targets.target import OVERHEAD_FIELDS


def test_wse3_matches_hardware_md():
    t = load_target("wse3")
    assert t.sram_bytes == 44_000_000_000
    assert (t.mesh_rows, t.mesh_cols) == (762, 1172)
    assert t.pe_sram_bytes == 48 * 1024
    assert t.io_bandwidth_bytes_per_s == 150e9
    assert t.peak_flops == pytest.approx(15.625e15, rel=0.01)   # dense fp16
    # The PE grid's SRAM is the wafer's SRAM to within a percent.
    assert t.pes * t.pe_sram_bytes == pytest.approx(t.sram_bytes, rel=0.01)


def test_wse2_matches_hardware_md():
    t = load_target("wse2")
    assert t.sram_bytes == 40_000_000_000 and t.pes == 757 * 996
    assert t.peak_flops == pytest.approx(7.5e15, rel=0.01)


def test_overrides_and_user_toml(tmp_path):
    t = load_target("wse3", {"clock_hz": "9.5e8", "wafers": 4})
    assert t.clock_hz == 9.5e8 and t.wafers == 4
    text = (load_target.__globals__["resources"].files("placer.targets") / "wse-mini.toml").read_text()
    p = tmp_path / "mine.toml"
    p.write_text(text.replace('name = "wse-mini"', 'name = "mine"'))
    assert load_target(str(p)).name == "mine"


@pytest.mark.parametrize("name,overrides,match", [
    ("nope", {}, "unknown target 'nope'"),
    ("wse3", {"bogus": 1}, "no field 'bogus'"),
    ("wse3", {"wafers": "1.5"}, "expected an integer"),
    ("wse3", {"wafers": "1e30"}, "above placer's cap of 4,096"),
    ("wse3", {"sram_bytes": "inf"}, "expected an integer"),
    ("wse3", {"clock_hz": "nan"}, "expected a finite number"),
    ("wse3", {"io_latency_s": "-inf"}, "expected a finite number"),
    ("wse3", {"mesh_rows": "100000"}, "cap of 16,384"),
    ("wse3", {"sram_bytes": 0}, "sram_bytes must be > 0"),
    ("wse3", {"default_reserve": 1.5}, r"default_reserve must be in \[0, 1\)"),
    # held-out corpus (issue 13): each was a traceback from the cost model or CP-SAT
    ("wse3", {"clock_hz": "1e-300"}, r"field clock_hz is 1e-300, outside placer's range 1e\+06 to 1e\+12"),
    ("wse3", {"io_bandwidth_bytes_per_s": "1e-300"}, "outside placer's range 1000 to 1e"),
    ("wse3", {"sram_bytes": "1e40"}, "sram_bytes is about 10\\^40, outside placer's range"),
    ("wse3", {"wafers": str(10**400)}, "wafers is about 10\\^400, above placer's cap of 4,096"),
    ("wse3", {"clock_hz": str(10**400)}, "expected a finite number, got about 10\\^400"),
    ("wse3", {"io_latency_s": "1e300"}, "io_latency_s is 1e\\+300, outside"),
    ("wse3", {"name": ""}, "field name is empty"),
])
def test_bad_targets(name, overrides, match):
    with pytest.raises(UserError, match=match):
        load_target(name, overrides)


def test_bad_toml(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("name = \n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_target(str(p))
    p.write_text('name = "x"\n')
    with pytest.raises(UserError, match="missing field"):
        load_target(str(p))


def test_targets_command_lists_units():
    r = CliRunner().invoke(cli, ["targets"])
    assert r.exit_code == 0, r.output
    for text in ("wse2", "wse3", "wse-mini", "44.000 GB", "150.0 GB/s", "48 KiB", "PFLOP/s", "us"):
        assert text in r.output


def test_targets_command_bad_input_is_one_line_exit_2():
    r = CliRunner().invoke(cli, ["targets", "nope"])
    assert r.exit_code == 2
    assert r.output.strip().count("\n") == 0 and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["targets", "--set", "x"])
    assert r.exit_code == 2 and "expected FIELD=VALUE" in r.output


def test_physics_variant_and_overhead_fields():
    physics = load_target("wse3-physics")
    assert "hop_overhead_s" in OVERHEAD_FIELDS
    for name in OVERHEAD_FIELDS:
        assert getattr(physics, name) == 0.0
    # a hop costs the link's latency plus the fitted overhead, through the one accessor
    assert physics.hop_latency_s == physics.io_latency_s
    wse3 = load_target("wse3")
    assert wse3.hop_latency_s == wse3.io_latency_s + wse3.hop_overhead_s
    slow = wse3.with_overrides({"hop_overhead_s": "2e-5"})
    assert slow.hop_latency_s == pytest.approx(wse3.io_latency_s + 2e-5)
    assert physics.prefill_utilisation == 1.0 and physics.calibration == ""
    # wse3 and wse3-rented are the same hardware as wse3-physics with the same fitted overheads
    overheads = {*OVERHEAD_FIELDS, "prefill_utilisation", "calibration"}
    labels = {"name", "description", "cost_per_hour"}
    for name in ("wse3", "wse3-rented"):
        calibrated = load_target(name)
        for f in dataclasses.fields(calibrated):
            if f.name not in overheads | labels:
                assert getattr(calibrated, f.name) == getattr(physics, f.name), (name, f.name)
            if f.name in overheads:
                assert getattr(calibrated, f.name) == getattr(load_target("wse3"), f.name), (name, f.name)
    assert load_target("wse3").kernel_overhead_cycles > 0 and load_target("wse3").hop_overhead_s == 0
    with pytest.raises(UserError, match=r"prefill_utilisation must be in \(0, 1\]"):
        load_target("wse3-physics", {"prefill_utilisation": 1.5})
    with pytest.raises(UserError, match="request_overhead_s must be >= 0"):
        load_target("wse3-physics", {"request_overhead_s": -1})
    with pytest.raises(UserError, match="hop_overhead_s must be >= 0"):
        load_target("wse3-physics", {"hop_overhead_s": -1e-6})
    assert load_target("wse3-physics", {"hop_overhead_s": "2e-4"}).hop_latency_s == pytest.approx(2.05e-4)


def test_overheads_description_names_the_variant():
    assert load_target("wse3-physics").overheads_description().startswith("physics only")
    t = load_target("wse3-physics", {"host_overhead_s_per_token": 1e-5, "calibration": "fitted x to p"})
    assert t.overheads_description() == "overheads host_overhead_s_per_token = 1e-05; fitted x to p"


def test_cost_per_hour_per_system_from_hardware_md():
    assert load_target("wse3").cost_per_hour == 23.35          # owned TCO per CS-3 system-hour
    rented = load_target("wse3-rented")
    assert rented.cost_per_hour == 41.96 and rented.mesh_rows == 762
    assert load_target("wse3").external_kv_bytes == 6_000_000_000_000  # one 6 TB KVSS node per CS-3
    with pytest.raises(UserError, match="cost_per_hour must be >= 0"):
        load_target("wse3", {"cost_per_hour": -1})


@pytest.mark.parametrize("line, match", [
    ('clock_hz = "fast"', r"t.toml: field 'clock_hz' needs a float, got the string 'fast'"),
    # a quoted number in a file is refused too (only --set text is parsed; was accepted as 16)
    ('mesh_rows = "16"',
     r"t.toml: field 'mesh_rows' needs a int, got the string '16'; write it without quotes"),
    ("clock_hz = { a = 1 }", r"t.toml: field 'clock_hz': expected a number, got dict"),
    ("clock_hz = 1979-05-27T07:32:00Z", r"t.toml: field 'clock_hz': expected a number, got datetime"),
    ("wafers = 2.5", r"t.toml: field 'wafers': expected an integer, got 2.5"),
    ("name = 3", r"t.toml: field 'name' needs a string, got 3"),
])
def test_target_file_fields_are_converted_and_checked(tmp_path, line, match):
    """A target file's values go through the same conversion as --set values (each line was a
    TypeError traceback in the cost model)."""
    text = (load_target.__globals__["resources"].files("placer.targets") / "wse-mini.toml").read_text()
    key = line.split(" ")[0]
    kept = [ln for ln in text.splitlines() if not ln.startswith(key + " ")]
    p = tmp_path / "t.toml"
    p.write_text("\n".join(kept) + f"\n{line}\n")
    with pytest.raises(UserError, match=match):
        load_target(str(p))


def test_placer_targets_shows_every_overhead_and_the_cost_with_units():
    from click.testing import CliRunner

    from placer.cli.main import cli

    out = CliRunner().invoke(cli, ["targets", "wse3", "wse3-rented", "wse2"])
    assert out.exit_code == 0, out.output
    assert "us/hop" in out.output and "cycles/kernel" in out.output
    assert "$23.35 per system-hour" in out.output and "$41.96 per system-hour" in out.output
    assert "cost                   not set" in out.output  # wse2 has no published cost
