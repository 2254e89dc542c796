"""Reading a raw file as numbered lines in byte ranges, so that no worker holds a whole file.

A file is cut into CHUNK_BYTES ranges. A line belongs to the range its first byte is in. One pass counts the
newlines of each range (a side input) so that every line still gets its 1-based line number, which the
quarantine and "the first of duplicate lines wins" rely on. Works on any Beam filesystem (local, gs://).
"""

from __future__ import annotations

import logging
import os

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from components.example_gen.movielens import RawLine

CHUNK_BYTES = 32 << 20
_BLOCK = 1 << 20
BOM = b"\xef\xbb\xbf"
# Progress of long reads, shown by `recommender run` (pipeline/local_runner.py) on either runner: the worker is
# the launching process there (DirectRunner, Flink LOOPBACK); on a cluster these lines go to the workers' logs.
PROGRESS_LOGGER = "recommender.progress"
_progress = logging.getLogger(PROGRESS_LOGGER)


def file_size(path: str) -> int:
    """Bytes in `path` (FileNotFoundError when absent)."""
    [result] = FileSystems.match([path])
    if not result.metadata_list:
        raise FileNotFoundError(path)
    return result.metadata_list[0].size_in_bytes


def ranges(size: int, chunk: int = CHUNK_BYTES) -> list[tuple[int, int, int]]:
    """(index, start, end) byte ranges covering [0, size); at least one (empty files have no lines)."""
    return [(i, start, min(start + chunk, size)) for i, start in enumerate(range(0, max(size, 1), chunk))]


def count_newlines(path: str, start: int, end: int) -> int:
    """Newline bytes in [start, end) of `path`."""
    count = 0
    with FileSystems.open(path) as handle:
        handle.seek(start)
        left = end - start
        while left > 0:
            block = handle.read(min(_BLOCK, left))
            if not block:
                break
            count += block.count(b"\n")
            left -= len(block)
    return count


def lines_in_range(path: str, start: int, end: int, newlines_before: int, skip_header: bool = False):
    """The RawLines whose first byte is in [start, end), numbered: `newlines_before` = newlines in [0, start).

    Only `\\n` ends a line (a `\\r` before it is dropped, like movielens.split_lines); a last line without one is
    marked unterminated; a UTF-8 byte-order mark opening the file is dropped; with `skip_header` line 1 is not
    yielded (the caller read it as the header).
    """
    name = os.path.basename(path)
    with FileSystems.open(path) as handle:
        position, line_no = start, newlines_before + 1
        if start > 0:
            handle.seek(start - 1)
            if handle.read(1) != b"\n":  # the line in progress belongs to the previous range
                rest = handle.readline()
                position, line_no = start + len(rest), line_no + 1
        else:
            handle.seek(0)
        while position < end:
            data = handle.readline()
            if not data:
                break
            terminated = data.endswith(b"\n")
            text = data[:-1] if terminated else data
            if position == 0:
                text = text.removeprefix(BOM)
            if not (skip_header and line_no == 1):
                yield RawLine(name, line_no, text.removesuffix(b"\r"), terminated=terminated)
            position += len(data)
            line_no += 1


def first_line(path: str) -> bytes:
    """The first line of `path` (its header), without the line ending."""
    with FileSystems.open(path) as handle:
        return handle.readline().rstrip(b"\r\n")


class ReadLines(beam.PTransform):
    """pipeline → the numbered RawLines of one file, read in byte ranges by as many workers as there are ranges."""

    def __init__(self, path: str, skip_header: bool = False, chunk: int = CHUNK_BYTES):
        super().__init__()
        self._path, self._skip_header, self._chunk = path, skip_header, chunk

    def expand(self, pipeline):
        path, skip_header = self._path, self._skip_header
        chunks = pipeline | "Ranges" >> beam.Create(ranges(file_size(path), self._chunk)) | "Spread" >> beam.Reshuffle()
        counts = chunks | "CountNewlines" >> beam.Map(lambda r: (r[0], count_newlines(path, r[1], r[2])))

        def read(chunk, counts: dict):
            index, start, end = chunk
            before = sum(counts[i] for i in range(index))
            yield from lines_in_range(path, start, end, before, skip_header)
            _progress.info(
                "read %s: lines %s to %s (byte range %d of %d)",
                os.path.basename(path),
                f"{before + 1:,}",
                f"{before + counts[index]:,}",
                index + 1,
                len(counts),
            )

        return chunks | "ReadRange" >> beam.FlatMap(read, beam.pvalue.AsDict(counts)) | "Reshuffle" >> beam.Reshuffle()
