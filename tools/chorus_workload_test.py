#!/usr/bin/env python3
"""Unit tests of the history checker in tools/chorus_workload.py (judge_history), on
hand-written histories: it must flag lost, phantom and resurrected values, and accept
what causality explains. Run: python3 tools/chorus_workload_test.py"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chorus_workload import judge_history  # noqa: E402


def put(value, seen=(), outcome="acknowledged", status=None, key="k", t=0.0):
    rec = {"op": "put", "key": key, "value": value, "seen": list(seen), "outcome": outcome,
           "t_start": t, "t_end": t + 0.01}
    if status is not None:
        rec["status"] = status
    return rec


def delete(seen=(), outcome="acknowledged", status=None, key="k", t=0.0):
    rec = put(None, seen, outcome, status, key, t)
    rec["op"] = "delete"
    return rec


def judge(ops, final):
    return judge_history(ops, lambda key: (set(final.get(key, ())), None))


class JudgeHistoryTests(unittest.TestCase):
    def test_read_modify_write_chain_is_superseded_not_lost(self):
        r = judge([put("a1"), put("a2", ["a1"]), put("a3", ["a2"])], {"k": ["a3"]})
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["superseded"], 2)

    def test_missing_acknowledged_write_is_lost(self):
        r = judge([put("a1")], {"k": []})
        self.assertEqual([x["write"]["value"] for x in r["lost"]], ["a1"])
        self.assertFalse(r["ok"])

    def test_unacknowledged_write_that_landed_supersedes(self):
        r = judge([put("a1"), put("a2", ["a1"], outcome="refused", status=503)], {"k": ["a2"]})
        self.assertTrue(r["ok"], r)

    def test_unacknowledged_write_that_vanished_explains_nothing(self):
        r = judge([put("a1"), put("a2", ["a1"], outcome="error")], {"k": []})
        self.assertEqual(len(r["lost"]), 1)

    def test_value_never_written_is_a_phantom(self):
        r = judge([put("a1")], {"k": ["a1", "zzz"]})
        self.assertEqual(r["phantoms"], [{"key": "k", "value": "zzz"}])
        self.assertFalse(r["ok"])

    def test_deleted_value_that_comes_back_is_resurrected(self):
        r = judge([put("a1"), delete(["a1"])], {"k": ["a1"]})
        self.assertEqual(len(r["resurrected"]), 1)
        self.assertFalse(r["ok"])

    def test_superseded_value_next_to_its_successor_is_resurrected(self):
        r = judge([put("a1"), put("a2", ["a1"])], {"k": ["a1", "a2"]})
        self.assertEqual(r["resurrected"][0]["values"], ["a1"])

    def test_acknowledged_delete_leaves_key_absent(self):
        r = judge([put("a1"), put("a2", ["a1"]), delete(["a2"])], {"k": []})
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["deleted_keys_absent"], 1)

    def test_write_concurrent_with_delete_revives_key(self):
        r = judge([put("a1"), delete(["a1"]), put("b1")], {"k": ["b1"]})
        self.assertTrue(r["ok"], r)

    def test_concurrent_writes_are_siblings(self):
        r = judge([put("a1"), put("b1")], {"k": ["a1", "b1"]})
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["siblings_keys"], ["k"])

    def test_indeterminate_delete_may_have_happened(self):
        r = judge([put("a1"), delete(["a1"], outcome="refused", status=503)], {"k": []})
        self.assertTrue(r["ok"], r)

    def test_delete_answered_4xx_never_happened(self):
        r = judge([put("a1"), delete(["a1"], outcome="refused", status=400)], {"k": []})
        self.assertEqual(len(r["lost"]), 1)

    def test_unreadable_key_fails(self):
        r = judge_history([put("a1")], lambda key: (None, "no node answered"))
        self.assertEqual(len(r["unreadable"]), 1)
        self.assertFalse(r["ok"])


if __name__ == "__main__":
    unittest.main()
