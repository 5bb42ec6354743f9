"""One model's share of the alert state: cut out of the daemon's whole state, and put back.

The alert pipeline keeps one state for all the models of an instance (lifecycle, groups,
notification log, retraining). With ``state.backend: kafka`` a model moves alone, so its share
travels in its changelog record: its alerts (firing, pending, ended), its model version, the
groups of its alerts (``alerting.group_by`` includes ``model``, so a group has one model), the
notification log entries of those groups and its retraining state.

>>> whole = {"version": 1, "lifecycle": {"alerts": [{"labels": {"model": "a"}}, {"labels": {"model": "b"}}],
...          "versions": {"a": "1", "b": "2"}, "ended": []},
...          "groups": [{"key": "g-a", "labels": {"model": "a"}}], "nflog": {"g-a": {"seq": 0}}, "retrain": {"b": {}}}
>>> part = alert_share(whole, "a")
>>> part["lifecycle"]["versions"], part["nflog"], part["retrain"]
({'a': '1'}, {'g-a': {'seq': 0}}, {})
>>> back = merge_alert_share(without_model(whole, "a"), "a", part)
>>> [x["labels"]["model"] for x in back["lifecycle"]["alerts"]], sorted(back["nflog"])
(['b', 'a'], ['g-a'])
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any


def _model(item: Any) -> Any:
    return (item.get("labels") or {}).get("model")


def alert_share(whole: dict[str, Any], model_id: str) -> dict[str, Any]:
    """``model_id``'s part of an ``AlertPipeline.state()``."""
    return alert_shares(whole, [model_id])[model_id]


def alert_shares(whole: dict[str, Any], models: Collection[str]) -> dict[str, dict[str, Any]]:
    """Each of ``models``' part of an ``AlertPipeline.state()``, in one pass over it (a checkpoint and a
    rebalance take the parts of every model they write: one pass each would be models x alerts)."""
    shares: dict[str, dict[str, Any]] = {m: {"lifecycle": {"alerts": [], "versions": {}, "ended": []}, "groups": [],
                                             "nflog": {}, "retrain": {}} for m in models}
    lifecycle = whole["lifecycle"]
    for part in ("alerts", "ended"):
        for a in lifecycle[part]:
            if (share := shares.get(_model(a))) is not None:
                share["lifecycle"][part].append(a)
    for m, v in lifecycle["versions"].items():
        if m in shares:
            shares[m]["lifecycle"]["versions"][m] = v
    group_of: dict[str, str] = {}
    for g in whole["groups"]:
        if (m := _model(g)) in shares:
            shares[m]["groups"].append(g)
            group_of[g["key"]] = m
    for k, v in whole["nflog"].items():
        if k in group_of:
            shares[group_of[k]]["nflog"][k] = v
    for m, v in whole["retrain"].items():
        if m in shares:
            shares[m]["retrain"][m] = v
    return shares


def without_model(whole: dict[str, Any], model_id: str) -> dict[str, Any]:
    """``whole`` with ``model_id``'s part removed."""
    return without_models(whole, {model_id})


def without_models(whole: dict[str, Any], models: Collection[str]) -> dict[str, Any]:
    """``whole`` with the parts of ``models`` removed, in one pass."""
    gone = set(models)
    keys = {g["key"] for g in whole["groups"] if _model(g) in gone}
    lifecycle = whole["lifecycle"]
    return {
        **whole,
        "lifecycle": {
            "alerts": [a for a in lifecycle["alerts"] if _model(a) not in gone],
            "versions": {m: v for m, v in lifecycle["versions"].items() if m not in gone},
            "ended": [a for a in lifecycle["ended"] if _model(a) not in gone],
        },
        "groups": [g for g in whole["groups"] if g["key"] not in keys],
        "nflog": {k: v for k, v in whole["nflog"].items() if k not in keys},
        "retrain": {m: v for m, v in whole["retrain"].items() if m not in gone},
    }


def merge_alert_share(whole: dict[str, Any], model_id: str, share: dict[str, Any]) -> dict[str, Any]:
    """``whole`` (without ``model_id``'s part) with ``share`` added."""
    return merge_alert_shares(whole, {model_id: share})


def merge_alert_shares(whole: dict[str, Any], shares: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """``whole`` (without the parts of these models) with their ``shares`` added, in their order."""
    lifecycle = whole["lifecycle"]
    parts = list(shares.values())
    return {
        **whole,
        "lifecycle": {
            "alerts": [*lifecycle["alerts"], *(a for p in parts for a in p["lifecycle"]["alerts"])],
            "versions": {**lifecycle["versions"], **{m: v for p in parts for m, v in p["lifecycle"]["versions"].items()}},
            "ended": [*lifecycle["ended"], *(a for p in parts for a in p["lifecycle"]["ended"])],
        },
        "groups": [*whole["groups"], *(g for p in parts for g in p["groups"])],
        "nflog": {**whole["nflog"], **{k: v for p in parts for k, v in p["nflog"].items()}},
        "retrain": {**whole["retrain"], **{m: v for p in parts for m, v in p["retrain"].items()}},
    }
