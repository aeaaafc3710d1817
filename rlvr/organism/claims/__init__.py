"""The other RL claims as organism experiments: one example, spurious rewards, over-hard
problems, distillation vs RL, and what makes updates sparse.

``train_claims(recipe, out)`` trains the runs of a claims recipe
(``data/organism-claims/recipe.toml``); ``measure_claim(claim, folder)`` measures one claim
with its verdict; the experiments run through ``rsteer run data/experiments/claim_*.toml``.

Names are imported on first use: ``rlvr.organism.claims.settings`` needs no torch.
"""

from __future__ import annotations

from ...lazy import lazy_exports

_EXPORTS = {
    "CLAIMS": "settings",
    "VERDICTS": "settings",
    "ClaimSettings": "settings",
    "ClaimRun": "recipe",
    "ClaimsRecipe": "recipe",
    "is_claims_recipe": "recipe",
    "load_claims": "recipe",
    "measure_update": "train",
    "remeasure": "train",
    "train_claims": "train",
    "effect": "evidence",
    "measure_claim": "measure",
    "shortcuts": "evidence",
    "render_claim": "report",
    "plot_claim": "report",
    "render_claims_card": "card",
    "write_claims_card": "card",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
