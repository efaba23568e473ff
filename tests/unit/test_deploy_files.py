"""deploy/: the JupyterHub config and the Kubernetes manifests and Helm values, checked offline.

No cluster and no Helm run here.  Manifests are validated with kubernetes-validate
(it ships the Kubernetes JSON schemas).  The z2jh values are checked against the lab
spec here, and against the chart's values schema when ``SMARTOS_LAB_Z2JH_SCHEMA`` and
``SMARTOS_LAB_Z2JH_VALUES`` name the chart's values.schema.yaml and values.yaml.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from smartos_lab.seats import QEMU_OVERHEAD_MIB
from tests import needs

yaml = pytest.importorskip("yaml")

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KVM = "devices.kubevirt.io/kvm"
K8S_VERSION = "1.30.0"


def _gib(text: str) -> float:
    units = {"G": 1000**3 / 2**30, "Gi": 1.0, "M": 1000**2 / 2**30, "Mi": 1 / 1024}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    return float(text) / 2**30


@pytest.mark.parametrize("name", ["image-cache.yaml", "kvm-device-plugin.yaml"])
def test_manifests_are_valid_kubernetes_objects(name):
    kv = needs.module("kubernetes_validate")
    documents = [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / name).read_text()) if d]
    assert documents
    for doc in documents:
        kv.validate(doc, K8S_VERSION, strict=True)


def test_an_invalid_manifest_is_caught_by_the_validator():
    kv = needs.module("kubernetes_validate")
    doc = next(yaml.safe_load_all((DEPLOY / "kubernetes" / "image-cache.yaml").read_text()))
    doc["spec"]["accessModes"] = "ReadOnlyMany"          # must be a list
    with pytest.raises(kv.ValidationError):
        kv.validate(doc, K8S_VERSION, strict=True)


def _values() -> dict:
    return yaml.safe_load((DEPLOY / "kubernetes" / "values.yaml").read_text())


def test_helm_values_size_pods_from_the_lab_spec_and_offer_kvm_with_a_tcg_fallback():
    single = _values()["singleuser"]
    lab_gib = (4096 + QEMU_OVERHEAD_MIB) / 1024
    assert _gib(single["memory"]["guarantee"]) >= lab_gib
    assert _gib(single["memory"]["limit"]) >= _gib(single["memory"]["guarantee"])
    kvm, tcg = single["profileList"]
    assert kvm["default"] and kvm["kubespawner_override"]["extra_resource_limits"] == {KVM: "1"}
    assert KVM not in str(tcg)
    mount = single["storage"]["extraVolumeMounts"][0]
    assert mount["readOnly"] and single["storage"]["extraVolumes"][0]["persistentVolumeClaim"][
        "readOnly"]
    assert single["extraEnv"]["SMARTOS_LAB_CACHE"].startswith(mount["mountPath"] + "/")
    assert _values()["cull"]["enabled"]


@pytest.mark.skipif(not (os.environ.get("SMARTOS_LAB_Z2JH_SCHEMA")
                         and os.environ.get("SMARTOS_LAB_Z2JH_VALUES")),
                    reason="set SMARTOS_LAB_Z2JH_SCHEMA and SMARTOS_LAB_Z2JH_VALUES to the chart's files")
def test_helm_values_pass_the_charts_values_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = yaml.safe_load(Path(os.environ["SMARTOS_LAB_Z2JH_SCHEMA"]).read_text())
    merged = _merge(yaml.safe_load(Path(os.environ["SMARTOS_LAB_Z2JH_VALUES"]).read_text()),
                    _values())
    errors = [f"{list(e.path)}: {e.message}"
              for e in jsonschema.Draft7Validator(schema).iter_errors(merged)]
    assert errors == []


def _merge(base, override):
    """Helm's merge of user values over the chart's defaults."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in override.items()}}
    return override


def test_the_jupyterhub_config_spawns_unix_users_with_the_shared_cache_and_private_labs(monkeypatch):
    traitlets = pytest.importorskip("traitlets.config")
    config = traitlets.Config()
    monkeypatch.setenv("SMARTOS_LAB_SHARED", "/srv/x")
    monkeypatch.setenv("SMARTOS_LAB_INSTRUCTORS", "ann,bob")
    source = (DEPLOY / "jupyterhub" / "jupyterhub_config.py").read_text()
    exec(compile(source, "jupyterhub_config.py", "exec"), {"get_config": lambda: config})
    assert config.JupyterHub.spawner_class == "jupyterhub.spawner.LocalProcessSpawner"
    assert config.JupyterHub.ip == "127.0.0.1"
    env = config.Spawner.environment
    assert env["SMARTOS_LAB_CACHE"] == "/srv/x/cache"
    assert not {"SMARTOS_LAB_HOME", "SMARTOS_LAB_RUNDIR"} & set(env)
    assert config.Authenticator.admin_users == {"ann", "bob"}
    assert callable(config.Spawner.post_stop_hook)
