"""The light dataset upstream's sample/generate.py gets under --kinemic, instead of HumanML3D.

Upstream's generate.py loads the HumanML3D test split (./dataset/HumanML3D: texts, Mean/Std,
split files, GloVe for other modes) even when every condition comes from the command line.
Sampling a KineMIC student from given actions (and prompts) uses only four things of it:

* ``data.dataset.t2m_dataset.inv_transform(x)``: x * Std + Mean, to de-normalise samples;
* ``data.dataset.action_name_to_action(names)``: class indices of action names;
* ``data.dataset.num_actions`` (read by upstream's get_model_args);
* ``data.fixed_length`` (set by generate.py).

``SamplingLoader`` provides exactly those, from the student's own classes and the Mean/Std it
was trained with, so no HumanML3D copy is needed. Iterating it (what generate.py does when
neither a prompt nor an action is given) raises: the plugin always supplies actions.
Source of the interface: upstream sample/generate.py, data_loaders/humanml/data/dataset.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

__all__ = ["Normaliser", "SamplingDataset", "SamplingLoader"]


class Normaliser:
    """Upstream's ``t2m_dataset.inv_transform``: Mean/Std of the features.

    Args:
        mean, std: (F,) arrays (F = 263 for HumanML3D).
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    def inv_transform(self, data):
        """data * Std + Mean over the last dimension (numpy or torch [..., F] in, same kind out)."""
        if torch.is_tensor(data):
            return data * torch.from_numpy(self.std).to(data) + torch.from_numpy(self.mean).to(data)
        return data * self.std + self.mean


class SamplingDataset(torch.utils.data.Dataset):
    """What generate.py reads from ``data.dataset`` when sampling given actions.

    Args:
        mean, std: feature statistics the model was trained with.
        class_names: the student's classes, in class-index order.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, class_names: Sequence[str]) -> None:
        self.t2m_dataset = Normaliser(mean, std)
        self.mean, self.std = self.t2m_dataset.mean, self.t2m_dataset.std
        self.class_names = tuple(class_names)
        self.num_actions = len(self.class_names)

    def action_name_to_action(self, action_names: Sequence[str]) -> np.ndarray:
        """Class indices of action names (exact names, as generate.py passes them).

        Raises:
            ValueError: a name that is not one of the classes (the valid ones are listed).
        """
        index = {name: i for i, name in enumerate(self.class_names)}
        unknown = [n for n in action_names if n not in index]
        if unknown:
            raise ValueError(f"actions {unknown} are not classes of this KineMIC model; valid: {list(self.class_names)}")
        return np.array([index[n] for n in action_names], dtype=np.int64)

    def __len__(self) -> int:
        return 0

    def __getitem__(self, item: int):
        raise IndexError("the KineMIC sampling dataset holds no motions")


class SamplingLoader:
    """Stands where generate.py expects its DataLoader: ``.dataset`` and ``.fixed_length``."""

    def __init__(self, dataset: SamplingDataset) -> None:
        self.dataset = dataset
        self.fixed_length = None

    def __len__(self) -> int:
        return 0

    def __iter__(self) -> Iterator:
        raise RuntimeError(
            "--kinemic sampling takes its conditions from --action_name / --action_index / --all_actions "
            "(and --text_prompt), not from a dataset"
        )
