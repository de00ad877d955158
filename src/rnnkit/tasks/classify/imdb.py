"""IMDB through classify: `rnnkit train imdb` is `train classify` over aclImdb with IMDB's defaults.

The reviews come from `rnnkit.data.imdb` (the tarball or the unpacked folder,
each file checked as that module does); their labels are the folder names,
"negative" and "positive" (sorted, so the ids are 0 and 1 as in the older
sentiment bundles).
"""

from __future__ import annotations

from rnnkit.data.labelled import LabelledTexts

LABELS = ("negative", "positive")
SPLITS = ("train", "test")


def imdb_split(source, split: str = "train") -> LabelledTexts:
    """The labelled reviews of one aclImdb split ("train" or "test"); `source` as `rnnkit.data.imdb.locate` takes."""
    from rnnkit.data.imdb import check_complete, iter_reviews, locate

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
    path = locate(source)
    texts, labels = [], []
    seen: dict[str, list[int]] = {name: [] for name in SPLITS}
    for review in iter_reviews(path):
        seen[review.split].append(review.label)
        if review.split == split:
            texts.append(review.text)
            labels.append(LABELS[review.label])
    check_complete(path, seen)  # a split or a class missing: a broken download, said before any training
    return LabelledTexts(texts, labels, f"{path} ({split})", text_field="review files",
                         label_field="pos/neg folders")
