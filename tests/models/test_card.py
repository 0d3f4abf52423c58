from models.card import render
from models.registry import BUILTIN, WEIGHTS_DIR


def test_a_routed_model_states_its_cost_against_the_fidelity_model_and_a_fidelity_model_does_not() -> None:
    routed = render(BUILTIN["vcsr-jpeg-x2"], (0.6, "int8"), (1.2, "int8"))
    assert "2.00× the time of `vcsr-m-x2` (1.20 megapixels/s, int8, timed in turn)" in routed
    assert "up to 2×." in routed
    assert "(over it" in render(BUILTIN["vcsr-jpeg-x2"], (0.5, "bfloat16"), (1.2, "int8"))
    assert "Cost on a routed upload" not in render(BUILTIN["vcsr-m-x2"], (1.2, "int8"))


def test_every_committed_card_of_a_routed_model_states_its_cost() -> None:
    for spec in BUILTIN.values():
        card = (WEIGHTS_DIR / f"{spec.name}.md").read_text()
        assert ("- **Cost on a routed upload**" in card) == (spec.family != "fidelity"), spec.name
