"""Which process of a DDP run this is, known before Lightning starts, from each launcher's variables."""

from mnistlab.core.ranks import is_rank_zero


def test_rank_zero_is_known_from_each_launchers_variables(monkeypatch):
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert is_rank_zero()
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"):
        monkeypatch.setenv(name, "1")
        assert not is_rank_zero(), name
        monkeypatch.setenv(name, "0")
    assert is_rank_zero()
