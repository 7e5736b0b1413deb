"""Synthetic faces behind ``sample_data/`` (known identities, planted attributes); imports only the bottom floor."""

from audit.synth.dataset import (DEFAULT_MEMBERSHIP, DEFAULT_RECIPE, TRAINING_RECIPE, MembershipRecipe, Recipe,
                                 checksum, generate_arrays, materialise, recorded_recipe)
from audit.synth.people import SKIN_TONES, Person, make_person
from audit.synth.render import POINT_NAMES, draw, geometry, make_nuisance

__all__ = ["DEFAULT_MEMBERSHIP", "DEFAULT_RECIPE", "TRAINING_RECIPE", "MembershipRecipe", "Recipe", "checksum",
           "generate_arrays", "materialise", "recorded_recipe", "SKIN_TONES", "Person", "make_person", "POINT_NAMES", "draw", "geometry", "make_nuisance"]
