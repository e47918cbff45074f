"""Run records: the spec and its id, a run written, read back, verified and reproduced; edited,
stale and missing records are caught."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import vaelib.device
from vaelib import cli, records
from vaelib.records import RecordError, RecordMissing, Spec

TINY = dict(chapter="test", likelihood="bernoulli", hidden=(16,), latent_dim=2, max_epochs=4, patience=2,
            val_size=500, iwae_k=3, probes=("latent", "reconstruction"))


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("records")
    record = records.run(Spec(**TINY), device="cpu")
    return records.save(record, root), record


def test_spec_id_is_stable_and_covers_every_field() -> None:
    spec = Spec(**TINY)
    assert spec.id == Spec(**TINY).id == Spec.from_dict(json.loads(json.dumps(spec.to_dict()))).id
    assert len(spec.id) == 12
    changed = {spec.replace(seed=1).id, spec.replace(beta=2.0).id, spec.replace(hidden=(8,)).id,
               spec.replace(likelihood="gaussian", likelihood_args={"sigma": 0.1}).id, spec.replace(max_epochs=5).id,
               spec.replace(transform="binarize", transform_args={"threshold": 0.5}).id, spec.replace(lr=2e-3).id}
    assert spec.id not in changed and len(changed) == 7


@pytest.mark.parametrize("change, message", [
    ({"likelihood": "nope"}, "likelihood must be one of"),
    ({"beta": -1.0}, "beta must be in"),
    ({"seed": -1}, "seed must be an int >= 0"),
    ({"max_epochs": 0}, "max_epochs must be an int >= 1"),
    ({"probes": ("nope",)}, "probes must be names from"),
    ({"transform": "blur"}, "transform must be None or one of"),
    ({"likelihood": "gaussian", "likelihood_args": {"sigma": -1.0}}, "likelihood 'gaussian'"),
])
def test_bad_specs_are_refused_by_name(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Spec(**{**TINY, **change})


def test_record_contents(stored: tuple[Path, dict]) -> None:
    path, record = stored
    assert path.parent.name == "test" and path.name == f"{record['id']}.json"
    m = record["metrics"]
    assert m["stopped"] in ("patience", "max_epochs") and 1 <= m["best_epoch"] <= m["epochs_run"] <= 4
    assert m["best_val_elbo"] == max(record["history"]["val_elbo"])
    assert m["test_iwae_3"] >= m["test_elbo"] - 1.0  # the IWAE bound is at least the ELBO (up to noise)
    assert set(record["history"]) >= {"epoch", "loss", "rec", "kl", "val_elbo"}
    assert set(record["probes"]) == {"latent", "reconstruction"}
    env = record["environment"]
    assert env["device"] == "cpu" and env["threads"] == 1 and env["torch"] == torch.__version__
    shown = records.images(record, "samples")
    assert shown.shape == (10, 1, 28, 28) and 0 <= shown.min() and shown.max() <= 1


def test_load_verify_and_reproduce_exactly(stored: tuple[Path, dict]) -> None:
    path, record = stored
    assert records.load(path) == record
    ok, message = records.verify(path)
    assert ok, message
    result = records.reproduce(path)
    assert result["reproduced"] == result["recorded"] == record["metrics"]


def test_trained_model_is_the_recorded_model(stored: tuple[Path, dict]) -> None:
    path, record = stored
    spec = Spec.from_dict(record["spec"])
    model = records.trained_model(spec, path.parent.parent)
    assert not model.training
    recon = model.reconstruct(records._data(spec).test.images[: records.SHOW])
    assert torch.allclose(recon.clamp(0, 1), records.images(record, "reconstructions"), atol=0.5 / 255 + 1e-6)


def test_edited_and_stale_records_fail(stored: tuple[Path, dict], tmp_path: Path) -> None:
    path, record = stored
    edited = json.loads(path.read_text())
    edited["metrics"]["test_elbo"] += 1.0  # edited by hand
    bad = tmp_path / "test" / path.name
    bad.parent.mkdir()
    bad.write_text(json.dumps(edited))
    with pytest.raises(RecordError, match="digest mismatch"):
        records.load(bad)
    assert not records.verify(bad)[0]
    # a record whose digest was recomputed but whose first epoch was not made from its spec
    stale = json.loads(path.read_text())
    stale["history"]["rec"][0] *= 1.001
    stale["digest"] = records._digest(stale)
    bad.write_text(json.dumps(stale))
    ok, message = records.verify(bad)
    assert not ok and "first epoch differs: rec" in message
    # a record filed under another spec's name
    other = tmp_path / "test" / "000000000000.json"
    other.write_text(path.read_text())
    with pytest.raises(RecordError, match="do not match"):
        records.load(other)


def test_sweep_reads_trains_and_names_the_command(tmp_path: Path, stored: tuple[Path, dict]) -> None:
    spec = Spec(**{**TINY, "max_epochs": 2})
    with pytest.raises(RecordMissing, match="VAELIB_RECORDS=train"):
        records.sweep([spec], tmp_path)
    made = records.sweep([spec], tmp_path, mode="train")
    assert records.sweep([spec], tmp_path) == made
    with pytest.raises(FileExistsError, match="already holds a record"):
        records.save(made[0], tmp_path)


def test_cli_verify_and_reproduce(stored: tuple[Path, dict], capsys: pytest.CaptureFixture[str]) -> None:
    path, record = stored
    assert cli.main(["records", "verify", str(path.parent)]) == 0
    assert "1 of 1 records verified" in capsys.readouterr().out
    assert cli.main(["records", "reproduce", str(path.parent), "--choose", "abc123", "--json"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == {"recorded": record["metrics"], "reproduced": record["metrics"]}
    # --max-wall keeps the choice among records that trained within a time budget
    assert cli.main(["records", "reproduce", str(path.parent), "--choose", "abc123", "--max-wall", "0"]) == 2
    assert "took at most 0 s" in capsys.readouterr().err
    assert cli.main(["records", "reproduce", str(path.parent), "--max-wall", "1e9"]) == 2
    assert "--max-wall applies with --choose" in capsys.readouterr().err


def test_a_diverged_run_is_recorded_at_its_best_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    build = records._model

    def model_that_diverges_in_epoch_3(spec: Spec, image_shape: tuple[int, int, int]) -> torch.nn.Module:
        model = build(spec, image_shape)
        nll, calls = model.head.nll, {"n": 0}

        def poisoned(params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            if torch.is_grad_enabled():  # a training step, not an evaluation
                calls["n"] += 1
                if calls["n"] == 2 * 28 + 5:  # 28 steps an epoch
                    return nll(params, x) * float("inf")
            return nll(params, x)

        model.head.nll = poisoned
        return model

    monkeypatch.setattr(records, "_model", model_that_diverges_in_epoch_3)
    record = records.run(Spec(**{**TINY, "patience": 5}), device="cpu")
    m = record["metrics"]
    assert m["stopped"] == "non-finite loss" and "non-finite rec" in m["failure"] and "epoch 3" in m["failure"]
    assert m["epochs_run"] == 2 and m["best_epoch"] in (1, 2) and math.isfinite(m["test_elbo"])


def test_cli_trains_missing_records_of_a_spec_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs = [Spec(**{**TINY, "max_epochs": 1, "seed": s}) for s in (0, 1)]
    listing = tmp_path / "specs.json"
    listing.write_text(json.dumps([s.to_dict() for s in specs]))
    root = tmp_path / "records"
    assert cli.main(["records", "train", str(listing), "--root", str(root), "--shard", "1/2"]) == 0
    assert not records.path_for(specs[0], root).exists() and records.path_for(specs[1], root).exists()
    assert cli.main(["records", "train", str(listing), "--root", str(root)]) == 0
    assert capsys.readouterr().out.count("wrote") == 2  # the second call made only the missing one
    assert cli.main(["records", "train", str(listing), "--shard", "2/2"]) == 2


def test_the_tolerance_follows_how_the_recording_cpu_rounds(stored: tuple[Path, dict], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A record keeps the digest of its CPU's rounding; another digest (or none, as in records made
    before it was kept) is checked at the cross-hardware tolerance and is not chosen for an exact
    reproduction."""
    path, record = stored
    assert record["environment"]["cpu_numerics"] == vaelib.device.cpu_numerics()
    assert records.rounds_like_this_cpu(record) and records.tolerance(record) == records.CPU_RTOL
    other = json.loads(json.dumps(record))
    other["environment"]["cpu_numerics"] = "0" * 12
    older = json.loads(json.dumps(record))
    del older["environment"]["cpu_numerics"]
    for changed in (other, older):
        assert not records.rounds_like_this_cpu(changed) and records.tolerance(changed) == records.OTHER_RTOL
        changed["digest"] = records._digest(changed)
        elsewhere = tmp_path / ("other" if changed is other else "older") / path.parent.name / path.name
        elsewhere.parent.mkdir(parents=True)
        elsewhere.write_text(json.dumps(changed))
        ok, message = records.verify(elsewhere)
        assert ok and "tolerance 2e-02, not known to be made on a CPU that rounds like this one" in message
        assert cli.main(["records", "reproduce", str(elsewhere.parent), "--choose", "abc123"]) == 0
        assert "none can be reproduced exactly here; skipped" in capsys.readouterr().out
