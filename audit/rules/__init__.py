"""Rule packs that turn metric records into findings; imports models, conditions, metrics, intake and below."""

from audit.rules.engine import Pack, Rule, available_packs, evaluate, evaluate_rule, load_pack

__all__ = ["Pack", "Rule", "available_packs", "evaluate", "evaluate_rule", "load_pack"]
