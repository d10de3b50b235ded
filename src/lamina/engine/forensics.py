"""Forensics service: every layer's story, traces, recovery, secrets, waste, deep verify.

The analyses (``lamina.forensics``) work on a :class:`~lamina.forensics.stack.Stack`; this
service makes one from what the user named. A transport spec (``oci:DIR[:REF]``,
``oci-archive:FILE[:REF]``, ``docker-archive:FILE[:REF]``) always wins over an image name and
is read in place, never loaded into the store: each layer is streamed once to build its index
rows in memory. Anything else (or ``lamina:REF``) is a stored image, whose rows come from the
file index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import msgspec.structs

from lamina.archive.entry import IndexEntry
from lamina.engine.transport_spec import Format, is_transport, parse_transport
from lamina.errors import StoreError, UsageError
from lamina.forensics import recover, report, secrets, story, verify, waste
from lamina.forensics import tree as tree_
from lamina.forensics.stack import ContentVisitor, Stack, from_image
from lamina.image.model import Layer
from lamina.store.images import ImageRecord
from lamina.store.store import Store
from lamina.transports import local


class ForensicsService:
    def __init__(self, store: Store, *, resolve: Callable[[str], ImageRecord]) -> None:
        self._store = store
        self._resolve = resolve

    # -- sources --------------------------------------------------------------------------

    def stack(self, name: str, *, visitor: ContentVisitor | None = None) -> Stack:
        """The stack ``name`` denotes. With ``visitor``, a transport's layers are streamed
        once for both the index and the visitor; a stored image's rows come from the index and
        the visitor is not called (use :func:`lamina.forensics.stack.scan_contents`)."""
        if is_transport(name):
            spec = parse_transport(name)
            if spec.format is not Format.LAMINA:
                from lamina.engine import transfer  # the transports: only for a transport

                image, _ = transfer.read_image(
                    self._store, spec, platform=None, resolve=self._resolve
                )
                return from_image(image, name=name, source=spec.format.value, visitor=visitor)
            name = spec.ref or ""
        rec = self._resolve(name)
        records = self._store.layers.chain(rec.layers[-1]) if rec.layers else []

        def rows(i: int, view: Layer) -> tuple[Sequence[IndexEntry], int]:
            r = records[i]
            if r.diff_id != view.diff_id:
                raise StoreError(f"layer {i} of {name}: the stored chain does not match its config")
            return self._store.layers.entries(r.chain_id), r.content_size

        return from_image(local.read(self._store, rec), name=name, source="store", rows=rows)

    # -- the analyses ---------------------------------------------------------------------

    def layers(self, name: str) -> list[story.LayerStory]:
        return story.layer_stories(self.stack(name))

    def trace(self, name: str, path: str) -> story.Trace:
        return story.trace(self.stack(name), path)

    def tree(self, name: str, *, path: str = "", layer: int | None = None) -> tree_.TreeResult:
        return tree_.tree(self.stack(name), path=path, layer=layer)

    def diff(
        self, name_a: str, name_b: str | None, *, layer: int | None, unified: bool
    ) -> tree_.DiffResult:
        if name_b is not None:
            return tree_.diff_images(self.stack(name_a), self.stack(name_b), unified=unified)
        if layer is None:
            raise UsageError("image diff needs a second image or --layer N")
        return tree_.diff_layer(self.stack(name_a), layer=layer, unified=unified)

    def cat(self, name: str, path: str, *, layer: int | None, out: IO[bytes]) -> None:
        recover.cat(self.stack(name), path, layer=layer, out=out)

    def extract(
        self, name: str, paths: Sequence[str], *, dest: Path, layer: int | None
    ) -> list[recover.Extracted]:
        return recover.extract(self.stack(name), paths, dest=dest, layer=layer)

    def secrets(
        self,
        name: str,
        *,
        rules_file: Path | None = None,
        allow_file: Path | None = None,
        contents: bool = True,
    ) -> secrets.SecretsResult:
        ruleset = secrets.load_ruleset(rules_file=rules_file, allow_file=allow_file)
        return secrets.scan(
            ruleset, lambda visitor: self.stack(name, visitor=visitor), contents=contents
        )

    def waste(self, name: str) -> waste.WasteResult:
        return waste.waste(self.stack(name))

    def report(self, name: str, *, rules_file: Path | None = None) -> str:
        ruleset = secrets.load_ruleset(rules_file=rules_file, allow_file=None)
        found = secrets.scan(ruleset, lambda visitor: self.stack(name, visitor=visitor))
        stack = found.stack
        return report.render(
            stack=stack,
            stories=[
                msgspec.structs.replace(s, created_by=found.scrub(s.created_by))
                for s in story.layer_stories(stack)
            ],
            paths=story.layer_paths(stack),
            findings=found.findings,
            waste=waste.waste(stack),
        )

    def verify_deep(self, name: str | None, *, repair: bool) -> verify.DeepResult:
        """Walk each unpacked layer of ``name`` (every layer when None) against the index."""
        records = None
        if name is not None:
            rec = self._resolve(name)
            records = self._store.layers.chain(rec.layers[-1]) if rec.layers else []
        return verify.verify_layers(self._store, records=records, repair=repair)
