"""SmartOS images: the release mirror, resumable verified downloads, the local cache,
local files, platform extraction for a direct boot (from a tarball, folder, USB image or ISO),
and USB-image (GPT + FAT) editing."""
from __future__ import annotations

from .cache import CachedImage, ImageCache
from .checksums import Checksum, hash_file, parse_sums
from .decompress import gunzip
from .fat import (
    fat_copy_in,
    fat_copy_out,
    fat_delete,
    fat_exists,
    fat_label,
    fat_list,
    fat_mkdir,
    fat_read,
    fat_write,
)
from .gpt import Partition, find_partition, read_partitions
from .http_download import download
from .iso import IsoReader
from .labcopy import copy_for_lab
from .local import LocalImage, identify
from .mirror import DEFAULT_ROOT, Mirror, Release, validate_ts
from .platform import PlatformFiles, extract_platform, platform_files
from .progress import NotebookProgress, Progress, TerminalProgress, auto_progress, notebook_progress

__all__ = [
    "CachedImage", "ImageCache", "Checksum", "hash_file", "parse_sums", "gunzip", "download",
    "fat_copy_in", "fat_copy_out", "fat_delete", "fat_exists", "fat_label", "fat_list", "fat_mkdir",
    "fat_read", "fat_write", "Partition", "find_partition", "read_partitions", "IsoReader", "copy_for_lab",
    "LocalImage",
    "identify", "DEFAULT_ROOT", "Mirror", "Release", "validate_ts", "PlatformFiles",
    "extract_platform", "platform_files", "NotebookProgress", "Progress", "TerminalProgress",
    "auto_progress", "notebook_progress",
]
