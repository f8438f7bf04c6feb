"""Hosts sharing a database follow each other's corpus: `corpus add` announces a version, the others rebuild to it.

Each host keeps its own index, built from its own view of the corpus (a shared mount or a checkout). After
`advisor corpus add`, `corpus remove` or `advisor index`, the host records in the database a fingerprint of the
passages it now indexes. Every running bot compares that row with its own index every
ADVISOR_INDEX_CHECK_SECONDS (at least 1 s) and, when they differ, rebuilds its index incrementally from its corpus
folder in the background and swaps it in, answering from the old one meanwhile. A host whose corpus folder does
not hold the announced documents (a checkout not pulled yet) says so in its log and keeps answering.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading


logger = logging.getLogger(__name__)


def fingerprint(manifest) -> str:
    """What an index answers from, independent of the model and the files' dates: its passages' hashes."""
    if manifest is None:
        return ""
    digest = hashlib.sha256()
    for chunk_hash in manifest.chunk_hashes:
        digest.update(b"\x00" + chunk_hash.encode())
    return digest.hexdigest()


def tell_other_hosts(settings, engine) -> str:
    """After this host changed or rebuilt its index: announce it to the hosts sharing ADVISOR_DATABASE_URL.

    Returns a line for the operator ("" without a shared database). Raises StoreError when the database cannot be
    reached, saying that the change here is done and what to do.
    """
    if not settings.database_url:
        return ""
    from bot.store import StoreError
    from bot.store.postgres import PostgresStore

    try:
        store = PostgresStore(settings.database_url)
        try:
            version = store.announce_corpus(fingerprint(engine.store.read_manifest()), len(engine.documents),
                                            socket.gethostname())
        finally:
            store.close()
    except StoreError as exc:
        raise StoreError(f"This host's index is updated, but the other hosts were not told: {exc} Run `advisor "
                         "index` on this host once the database is back.") from None
    return f"Told the hosts sharing the database: corpus version {version}; they rebuild their index to it."


class CorpusFollower:
    """A daemon thread that keeps this host's index in step with the corpus version announced in the store."""

    def __init__(self, store, engine, seconds: float | None = None):
        self.store, self.engine = store, engine
        self.seconds = max(1.0, engine.check_seconds if seconds is None else seconds)  # as ADVISOR_INDEX_CHECK_SECONDS
        self.version = 0  # the announced version this host last acted on
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="advisor-corpus-follower", daemon=True)
        self._unreachable = False

    def start(self) -> "CorpusFollower":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set() and not getattr(self.store, "closed", False):  # the bot is stopping
            try:
                self.check()
                if self._unreachable:
                    logger.warning("The database is back; following the corpus version again.")
                self._unreachable = False
            except Exception as exc:  # noqa: BLE001 - the bot keeps answering from the index it has
                if not self._unreachable:  # once per outage, not every few seconds
                    logger.warning("Could not check the corpus version announced in the store: %s", exc)
                self._unreachable = True
            self._stop.wait(self.seconds)

    def check(self) -> bool:
        """One look: rebuild when the announced corpus differs from this host's index. True when rebuilt."""
        announced = self.store.corpus_version()
        if announced is None or announced["version"] == self.version:
            return False
        if fingerprint(self.engine.store.read_manifest()) == announced["fingerprint"]:
            self.version = announced["version"]
            return False
        logger.info("Corpus version %d was announced by %s (%d documents); rebuilding this host's index from %s",
                    announced["version"], announced["host"], announced["documents"], self.engine.corpus_dir)
        with self.engine.store.locked():  # one writer at a time with `advisor index` on this host
            self.engine.ensure_index()
        self.version = announced["version"]
        if fingerprint(self.engine.store.read_manifest()) != announced["fingerprint"]:
            logger.warning("This host's corpus at %s is not corpus version %d announced by %s (%d documents): update "
                           "this host's copy of the corpus (the shared mount, or pull the checkout), then run "
                           "`advisor index`. Still answering from the documents it has.", self.engine.corpus_dir,
                           announced["version"], announced["host"], announced["documents"])
            return True
        logger.info("Now answering from corpus version %d (%d documents).", announced["version"],
                    len(self.engine.documents))
        return True
