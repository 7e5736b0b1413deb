"""TAR at a false match rate: the threshold is chosen again on every person resample (two-way, as FMR is resampled),
so its interval carries the threshold's own variability. Checked against the same threshold rule applied to each
resample's comparisons written out one by one (a person drawn twice: their comparisons twice)."""

import numpy as np
import pytest

from audit.metrics import verification as ver
from audit.metrics.stats import PersonPairs, SubjectBootstrap


def _draw(rng, persons, images):
    own = np.repeat(np.arange(persons), images)  # probe rows; gallery image j is person j's
    s = rng.normal(0, 1, (len(own), persons)) + rng.normal(0, 0.5, persons)[None, :]
    s[np.arange(len(own)), own] += 3 + rng.normal(0, 0.7, persons)[own]
    imp = np.ones_like(s, bool)
    imp[np.arange(len(own)), own] = False
    return own, s, imp


@pytest.mark.parametrize("persons,images,rate", [(25, 3, 0.01), (25, 3, 0.05), (25, 3, 0.3), (6, 40, 0.001),
                                                 (60, 2, 0.002)])
def test_each_resample_places_its_own_threshold_as_threshold_at_fmr_would(persons, images, rate):
    rng = np.random.default_rng(persons * images)
    own, s, imp = _draw(rng, persons, images)
    boot = SubjectBootstrap(own, 40, 1, "t")
    _, gallery_row = np.unique(own, return_index=True)
    pairs = PersonPairs(boot, np.arange(len(own)), gallery_row)
    rows, cols = np.nonzero(imp)
    negatives, genuine = s[rows, cols], s[np.arange(len(own)), own]
    got = boot.share_at_own_threshold(genuine, negatives, lambda i: (rows[i], pairs.gallery_persons[cols[i]]),
                                      pairs.sum(imp), rate)
    want = []
    for c1 in boot._draw_counts(100):
        c2 = c1  # one draw of persons for both sides
        for r in range(len(c1)):
            weight = (c1[r, boot.inverse[rows]] * c2[r, pairs.gallery_persons[cols]]).astype(int)
            tau = ver.threshold_at_fmr(np.repeat(negatives, weight), rate)
            w = c1[r, boot.inverse]
            want.append((w * (genuine >= tau)).sum() / w.sum())
    assert np.array_equal(got, np.array(want))
    assert len(set(np.round(got, 9))) > 1  # the threshold (and with it TAR) moves with the persons drawn


def test_positives_of_a_subset_or_several_per_image_weigh_their_persons_draws():
    """The inversion probe's SAR: positives for only some persons (the victims attacked white-box), or several per
    image (a reconstruction against each other image of its person), weigh their person's count in the draw; the
    threshold is the same resample's, from every person's impostor comparisons."""
    rng = np.random.default_rng(7)
    own, s, imp = _draw(rng, 30, 2)
    boot = SubjectBootstrap(own, 60, 3, "t")
    _, gallery_row = np.unique(own, return_index=True)
    pairs = PersonPairs(boot, np.arange(len(own)), gallery_row)
    rows, cols = np.nonzero(imp)
    negatives = s[rows, cols]
    persons = np.array([2, 2, 5, 9, 9, 9, 17])  # a subset of persons, some with several positives
    positives = rng.normal(2.5, 1, len(persons))
    got = boot.share_at_own_threshold(positives, negatives, lambda i: (rows[i], pairs.gallery_persons[cols[i]]),
                                      pairs.sum(imp), 0.05, positive_persons=persons)
    want = []
    for c1 in boot._draw_counts(100):
        c2 = c1  # one draw of persons for both sides
        for r in range(len(c1)):
            weight = (c1[r, boot.inverse[rows]] * c2[r, pairs.gallery_persons[cols]]).astype(int)
            tau = ver.threshold_at_fmr(np.repeat(negatives, weight), 0.05)
            drawn = np.repeat(positives, c1[r, persons])
            want.append(np.mean(drawn >= tau) if len(drawn) else np.nan)
    assert np.allclose(got, want, equal_nan=True)
    assert np.isnan(got).any() and np.isfinite(got).sum() > 40  # a resample without those persons has no share


def test_a_gallery_of_other_persons_is_resampled_by_its_own_bootstrap():
    """The cloak probe's system threshold: queries of some persons against a gallery that also holds distractors.
    The gallery side's draws come from the gallery's own bootstrap (its persons), the query side's from the
    queries'; checked against writing each resample's comparisons out."""
    rng = np.random.default_rng(11)
    queries = np.repeat(np.arange(12), 3)  # 12 protected persons, 3 queries each
    gallery_people = np.r_[np.arange(12), 100 + np.arange(30)]  # their gallery images and 30 distractors
    s = rng.normal(0, 1, (len(queries), len(gallery_people)))
    own = s[np.arange(len(queries)), queries] + 3
    mask = queries[:, None] != gallery_people[None, :]
    boot = SubjectBootstrap(queries, 50, 2, "q")
    gal = SubjectBootstrap(gallery_people, 50, 2, "g")
    rows, cols = np.nonzero(mask)
    compared = np.zeros((boot.n_subjects, gal.n_subjects))
    np.add.at(compared, (boot.inverse[rows], gal.inverse[cols]), 1)
    got = boot.share_at_own_threshold(own, s[rows, cols], lambda i: (rows[i], gal.inverse[cols[i]]), compared, 0.02,
                                      gallery=gal)
    want = []
    for c1, c2 in zip(boot._draw_counts(100), gal._draw_counts(100)):
        for r in range(len(c1)):
            tau = ver.threshold_at_fmr(np.repeat(s[rows, cols], (c1[r, boot.inverse[rows]] * c2[r, gal.inverse[cols]])
                                                 .astype(int)), 0.02)
            w = c1[r, boot.inverse]
            want.append((w * (own >= tau)).sum() / w.sum())
    assert np.array_equal(got, np.array(want)) and len(set(np.round(got, 9))) > 1


def test_where_negatives_lie_is_looked_up_only_for_those_read_and_a_deep_threshold_reads_more():
    """The probes pass every impostor score and a function saying where the ones read lie (no index arrays the size of
    the score matrix). A person holding the highest impostor scores makes a resample without them reach far below the
    first scores read; its threshold must still be the one written-out comparisons give (found by a review: with only
    the highest scores kept, such resamples took the lowest kept one)."""
    from audit.metrics.stats import mask_positions

    rng = np.random.default_rng(13)
    own = np.r_[np.zeros(80, int), np.repeat(np.arange(1, 20), 3)]  # person 0 has 80 probe images, the others 3
    s = rng.normal(0, 1, (len(own), 20))
    s[np.arange(len(own)), own] += 3
    imp = np.ones_like(s, bool)
    imp[np.arange(len(own)), own] = False
    s[own == 0] += 4  # person 0's probes score high against everyone: they hold the 1,520 highest impostor scores
    boot = SubjectBootstrap(own, 60, 4, "t")
    _, gallery_row = np.unique(own, return_index=True)
    pairs = PersonPairs(boot, np.arange(len(own)), gallery_row)
    negatives, genuine = s[imp], s[np.arange(len(own)), own]
    looked_up = []

    def where(idx):
        looked_up.append(len(idx))
        r, c = mask_positions(imp, idx)
        return r, pairs.gallery_persons[c]

    got = boot.share_at_own_threshold(genuine, negatives, where, pairs.sum(imp), 0.05)
    rows, cols = np.nonzero(imp)  # the same with every position known beforehand
    assert np.array_equal(got, boot.share_at_own_threshold(
        genuine, negatives, lambda i: (rows[i], pairs.gallery_persons[cols[i]]), pairs.sum(imp), 0.05))
    want = []
    for c1 in boot._draw_counts(100):
        c2 = c1  # one draw of persons for both sides
        for r in range(len(c1)):
            weight = (c1[r, boot.inverse[rows]] * c2[r, pairs.gallery_persons[cols]]).astype(int)
            w = c1[r, boot.inverse]
            want.append((w * (genuine >= ver.threshold_at_fmr(np.repeat(negatives, weight), 0.05))).sum() / w.sum())
    assert np.array_equal(got, np.array(want))
    assert looked_up[0] < len(negatives) and len(looked_up) > 1  # it read further than the first scores
