"""The ServerApp's privacy accounting with Flower's RDP accountant: epsilon grows with the rounds,
shrinks with more noise, and a resumed run counts the rounds it resumes after."""

from server_app.accounting import Accountant


def spent(z: float, rounds: int, history=()) -> float:
    acc = Accountant(1e-5, edges=5, history=list(history))
    for _ in range(rounds):
        dp = {"noise_multiplier": z, "edges": 5}
        acc(dp)
    return dp["epsilon"]


def test_epsilon_grows_with_rounds_and_falls_with_noise():
    assert spent(1.0, 1) < spent(1.0, 5) < spent(1.0, 10)
    assert spent(2.0, 10) < spent(1.0, 10)
    assert 0 < spent(4.0, 1) < 2


def test_a_resumed_run_counts_the_rounds_before_it():
    history = [{"round": r, "dp": {"noise_multiplier": 1.0, "edges": 5}} for r in (1, 2, 3)]
    assert spent(1.0, 2, history) == spent(1.0, 5)
