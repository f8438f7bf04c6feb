"""What `advisor calibrate` fits from labelled questions, the ranker and the abstainer, saved per embedding model."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from retrieval.abstention import Abstainer
from retrieval.answer import Style
from retrieval.errors import AdvisorError
from retrieval.ranking import Ranker, load_ranker

logger = logging.getLogger(__name__)

# The calibration shipped with the package, fitted for the default model on dev + dev2.
SHIPPED_FILE = Path(__file__).with_name("calibration.json")
CALIBRATION_FOLDER = "calibration"  # in the data folder: one file per model, written by `advisor calibrate`


class CalibrationError(AdvisorError, ValueError):
    """A calibration file cannot be used as asked; the message says what to do."""


def calibration_file(data_dir: Path, model: str) -> Path:
    """Where `advisor calibrate` saves a calibration for this model: the data folder, never the package."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-") or "model"
    return Path(data_dir) / CALIBRATION_FOLDER / f"{slug}.json"


@dataclass(frozen=True)
class Calibration:
    """How candidates are ranked and when the evidence is too weak to answer, for one embedding model."""

    ranker: Ranker = field(default_factory=Ranker.default)
    abstainer: Abstainer = field(default_factory=Abstainer.uncalibrated)
    model: str = ""  # the embedding model it was fitted with ("" before models were recorded)
    style: Style = field(default_factory=Style)  # how the answer is composed from what was found
    fallback: bool = field(default=False, compare=False)  # none was fitted for the model: the safe default

    def save(self, path: Path) -> None:
        data = {"model": self.model, "ranker": self.ranker.to_dict(), "abstainer": asdict(self.abstainer),
                "style": asdict(self.style)}
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.tmp")
        temp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        temp.replace(path)

    @classmethod
    def read(cls, path: Path) -> "Calibration":
        """The calibration in a file; CalibrationError when it is missing or unreadable."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            # a calibration saved before the ranker was calibrated too holds the abstainer alone
            abstainer = Abstainer(**(data["abstainer"] if "abstainer" in data else data))
            style = Style(**data.get("style", {}))
        except FileNotFoundError:
            raise CalibrationError(f"{path} does not exist") from None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise CalibrationError(f"{path} cannot be used ({exc.__class__.__name__}); run `advisor calibrate` "
                                   "again") from None
        return cls(ranker=load_ranker(data.get("ranker")), abstainer=abstainer, model=data.get("model", ""),
                   style=style)

    @classmethod
    def for_model(cls, model: str, data_dir: Path | None = None) -> "Calibration":
        """The calibration fitted for this model: the data folder's (from `advisor calibrate`), else the shipped
        one when it was fitted for this model, else the default ranking with only clearly unrelated
        questions declined (the engine says so when it first answers)."""
        candidates = ([calibration_file(data_dir, model)] if data_dir is not None else []) + [SHIPPED_FILE]
        for path in candidates:
            if not path.is_file():
                continue
            try:
                calibration = cls.read(path)
            except CalibrationError as exc:
                logger.warning("%s", exc)
                continue
            if calibration.model in (model, ""):
                return calibration
        return cls(model=model, fallback=True)
