"""Every metric a built-in probe stores, with its meaning in plain words.

Rule packs may only name metrics listed here (or registered by a plugin probe); reports
and the README's metric glossary are generated from the same table.
"""

from __future__ import annotations

METRICS: dict[str, dict[str, str]] = {
    # leakage
    "accuracy": {"probe": "leakage", "meaning": "Share of faces whose attribute the attacker guessed right."},
    "balanced_accuracy": {"probe": "leakage", "meaning": "Accuracy averaged over the attribute's classes, so a "
                          "majority class cannot inflate it."},
    "macro_f1": {"probe": "leakage", "meaning": "F1 score averaged over classes (precision and recall together)."},
    "chance": {"probe": "leakage", "meaning": "Balanced accuracy of blind guessing: 1 / number of classes."},
    "normalised_gain": {"probe": "leakage", "meaning": "How far above chance the attacker is: (balanced accuracy - "
                        "chance) / (1 - chance). 0 = no leakage, 1 = the attribute is fully readable."},
    "mae": {"probe": "leakage", "meaning": "Mean absolute error of the attacker's age estimate, in years."},
    "rmse": {"probe": "leakage", "meaning": "Root-mean-square error of the age estimate, in years."},
    "baseline_mae": {"probe": "leakage", "meaning": "Age error of always guessing the median age (no information)."},
    "mae_gain": {"probe": "leakage", "meaning": "1 - MAE / baseline MAE: share of the age uncertainty the "
                 "embedding removes. 0 = nothing learned about age."},
    "bucket_accuracy": {"probe": "leakage", "meaning": "Share of faces put in the right age bracket (0-3, 4-12, "
                        "13-19, 20-30, 31-45, 46-60, 61+)."},
    "mask_effect": {"probe": "leakage", "meaning": "Change in leakage (normalised gain, or MAE gain for age) "
                    "between the condition and clean faces. Negative = the occlusion reduced leakage."},
    # identity
    "threshold": {"probe": "identity", "meaning": "System decision threshold (cosine) calibrated on clean "
                  "impostor comparisons at the stated false match rate."},
    "fnmr": {"probe": "identity", "meaning": "False non-match rate at the system threshold: share of genuine "
             "comparisons (same person) rejected."},
    "fmr": {"probe": "identity", "meaning": "False match rate at the system threshold: share of impostor "
            "comparisons (different people) accepted."},
    "tar_at_fmr": {"probe": "identity", "meaning": "True accept rate when the threshold is re-set for this "
                   "condition to give the stated false match rate."},
    "eer": {"probe": "identity", "meaning": "Equal error rate: where false matches and false non-matches are "
            "equally frequent."},
    "roc_auc": {"probe": "identity", "meaning": "Area under the ROC curve: chance that a genuine pair scores above "
                "an impostor pair."},
    "rank1": {"probe": "identity", "meaning": "Share of probes whose best match in the gallery is the right person."},
    "group_fmr": {"probe": "identity", "meaning": "False match rate within one demographic group at the global "
                  "threshold (impostors of the same group)."},
    "group_fnmr": {"probe": "identity", "meaning": "False non-match rate of one demographic group at the global "
                   "threshold."},
    "group_persons": {"probe": "identity", "meaning": "Persons in one demographic group (the units its rates and "
                      "their exact-binomial intervals rest on; rules on group differentials need enough of them)."},
    "group_fmr_trials": {"probe": "identity", "meaning": "Independent comparisons one demographic group's FMR is "
                         "worth (Korn-Graubard: p(1-p) over its resamples' variance; its comparisons share persons, "
                         "so fewer than its person pairs); rules on FMR differentials need enough of them."},
    "fmr_max_min": {"probe": "identity", "meaning": "Highest group FMR divided by the lowest (1 = parity)."},
    "fmr_max_geomean": {"probe": "identity", "meaning": "Highest group FMR divided by the geometric mean of all "
                        "groups (1 = parity)."},
    "fnmr_max_min": {"probe": "identity", "meaning": "Highest group FNMR divided by the lowest (1 = parity)."},
    "fnmr_max_geomean": {"probe": "identity", "meaning": "Highest group FNMR divided by the geometric mean (1 = "
                         "parity)."},
    "fdr": {"probe": "identity", "meaning": "Fairness discrepancy rate: 1 - (0.5 x largest FMR gap + 0.5 x largest "
            "FNMR gap) between groups. 1 = parity."},
    # inversion
    "sar_type1": {"probe": "inversion", "meaning": "Success attack rate type I: share of reconstructions accepted as "
                  "their own source image at the system threshold."},
    "sar_type2": {"probe": "inversion", "meaning": "Success attack rate type II: share of (reconstruction, other image "
                  "of the same person) comparisons accepted at the system threshold."},
    "inversion_rank1": {"probe": "inversion", "meaning": "Share of reconstructions whose best match among all original "
                        "images is the right person."},
    "recon_attr_accuracy": {"probe": "inversion", "meaning": "Share of reconstructions (setting 'reconstruction'; "
                            "'original' = the real photos, for reference) whose attribute an attribute model reads "
                            "correctly, over the victims labelled with it."},
    "recon_attr_mae": {"probe": "inversion", "meaning": "Age error of an attribute model on reconstructions (or the "
                       "originals), in years."},
    "ssim": {"probe": "inversion", "meaning": "Structural similarity of a reconstruction to its source image "
             "(1 = identical)."},
    "psnr": {"probe": "inversion", "meaning": "Peak signal-to-noise ratio of a reconstruction against its source, in "
             "dB (higher = closer)."},
    "queries_per_victim": {"probe": "inversion", "meaning": "Queries (images submitted to the matcher, answered "
                           "with a similarity score) the query-only attacker spent per victim."},
    # cloak
    "psr_at_1": {"probe": "cloak", "meaning": "Protection success rate: share of cloaked queries whose true match is "
                 "not the top-ranked result."},
    "psr_at_5": {"probe": "cloak", "meaning": "Share of cloaked queries whose true match is not in the top 5."},
    "psr_at_10": {"probe": "cloak", "meaning": "Share of cloaked queries whose true match is not in the top 10."},
    "psr_at_tau": {"probe": "cloak", "meaning": "Share of cloaked queries rejected against the person's own gallery "
                   "image at the system threshold (verification)."},
    "linf": {"probe": "cloak", "meaning": "Largest change of any pixel value made by the cloak (0-255 scale)."},
    # membership
    "membership_auc": {"probe": "membership", "meaning": "Chance that the attack scores a person who was in the "
                       "training data above one who was not (0.5 = cannot tell, 1 = always tells). Setting: the attack."},
    "membership_balanced_accuracy": {"probe": "membership", "meaning": "Mean of the share of members and the share "
                                     "of non-members the attack classifies right, at a threshold chosen on other "
                                     "persons."},
    "membership_tpr_at_fpr": {"probe": "membership", "meaning": "Share of members the attack flags when its threshold "
                              "is set (on other persons) to flag the stated share of non-members (setting "
                              "'attack;fpr=...'; ';unsupported' when too few non-members back that rate)."},
    "membership_fpr": {"probe": "membership", "meaning": "Share of non-members actually flagged at that threshold "
                       "(held-out persons): how close the attack came to its false-positive target."},
    "membership_nonmembers_needed": {"probe": "membership", "meaning": "More non-member persons a false-positive "
                                     "target needs to rest on 30 expected false positives (0 = enough)."},
    # acquisition (face detection on raw photos)
    "fta_rate": {"probe": "acquisition", "meaning": "Failure-to-acquire rate: share of the photos shown to the face "
                 "detector in which it found no face, or only faces below the confidence threshold (overall and per "
                 "group)."},
}


def known(metric: str) -> bool:
    return metric in METRICS
