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

from typing import Any


def _of(item: Any, model_id: str) -> bool:
    return bool((item.get("labels") or {}).get("model") == model_id)


def alert_share(whole: dict[str, Any], model_id: str) -> dict[str, Any]:
    """``model_id``'s part of an ``AlertPipeline.state()``."""
    lifecycle = whole["lifecycle"]
    groups = [g for g in whole["groups"] if _of(g, model_id)]
    keys = {g["key"] for g in groups}
    return {
        "lifecycle": {
            "alerts": [a for a in lifecycle["alerts"] if _of(a, model_id)],
            "versions": {m: v for m, v in lifecycle["versions"].items() if m == model_id},
            "ended": [a for a in lifecycle["ended"] if _of(a, model_id)],
        },
        "groups": groups,
        "nflog": {k: v for k, v in whole["nflog"].items() if k in keys},
        "retrain": {m: v for m, v in whole["retrain"].items() if m == model_id},
    }


def without_model(whole: dict[str, Any], model_id: str) -> dict[str, Any]:
    """``whole`` with ``model_id``'s part removed."""
    share = alert_share(whole, model_id)
    keys = {g["key"] for g in share["groups"]}
    lifecycle = whole["lifecycle"]
    return {
        **whole,
        "lifecycle": {
            "alerts": [a for a in lifecycle["alerts"] if not _of(a, model_id)],
            "versions": {m: v for m, v in lifecycle["versions"].items() if m != model_id},
            "ended": [a for a in lifecycle["ended"] if not _of(a, model_id)],
        },
        "groups": [g for g in whole["groups"] if g["key"] not in keys],
        "nflog": {k: v for k, v in whole["nflog"].items() if k not in keys},
        "retrain": {m: v for m, v in whole["retrain"].items() if m != model_id},
    }


def merge_alert_share(whole: dict[str, Any], model_id: str, share: dict[str, Any]) -> dict[str, Any]:
    """``whole`` (without ``model_id``'s part) with ``share`` added."""
    lifecycle = whole["lifecycle"]
    return {
        **whole,
        "lifecycle": {
            "alerts": [*lifecycle["alerts"], *share["lifecycle"]["alerts"]],
            "versions": {**lifecycle["versions"], **share["lifecycle"]["versions"]},
            "ended": [*lifecycle["ended"], *share["lifecycle"]["ended"]],
        },
        "groups": [*whole["groups"], *share["groups"]],
        "nflog": {**whole["nflog"], **share["nflog"]},
        "retrain": {**whole["retrain"], **share["retrain"]},
    }
