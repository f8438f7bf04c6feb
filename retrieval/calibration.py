"""What `advisor calibrate` fits from labelled questions, the ranker and the abstainer, saved as one JSON file."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from retrieval.abstention import Abstainer
from retrieval.ranking import Ranker, load_ranker

logger = logging.getLogger(__name__)

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


@dataclass(frozen=True)
class Calibration:
    """How candidates are ranked and when the evidence is too weak to answer."""

    ranker: Ranker = field(default_factory=Ranker.default)
    abstainer: Abstainer = field(default_factory=Abstainer.uncalibrated)

    def save(self, path: Path = CALIBRATION_FILE) -> None:
        data = {"ranker": self.ranker.to_dict(), "abstainer": asdict(self.abstainer)}
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> "Calibration":
        """The saved calibration; the default ranking and a permissive abstainer (logged) when unreadable."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            # a calibration saved before the ranker was calibrated too holds the abstainer alone
            abstainer = Abstainer(**(data["abstainer"] if "abstainer" in data else data))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            logger.warning("No usable calibration at %s (%s); answering with the default ranking and only "
                           "clearly unrelated questions declined. Run `advisor calibrate`.", path,
                           exc.__class__.__name__)
            return cls()
        return cls(ranker=load_ranker(data.get("ranker")), abstainer=abstainer)
