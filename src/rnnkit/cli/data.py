"""`rnnkit data imdb`: download a data set (checksum verified)."""

from __future__ import annotations

from pathlib import Path


def register(commands) -> None:
    from rnnkit.data.imdb import UPSTREAM_MD5, UPSTREAM_URL

    data = commands.add_parser("data", help="download data sets").add_subparsers(dest="dataset", metavar="DATASET",
                                                                               required=True)
    get_imdb = data.add_parser("imdb", help="download the IMDB Large Movie Review Dataset (84 MB)")
    get_imdb.add_argument("--dest", help="where to save the tarball (default: ~/.cache/rnnkit/data/, or "
                                         "$RNNKIT_CACHE/data/)")
    get_imdb.add_argument("--url", default=UPSTREAM_URL)
    get_imdb.add_argument("--checksum", default=UPSTREAM_MD5, help="expected md5 (upstream default) or sha256 of the file")
    get_imdb.add_argument("--force", action="store_true", help="download even if the file exists")
    get_imdb.add_argument("--quiet", action="store_true")
    get_imdb.set_defaults(func=cmd_data_imdb)


def cmd_data_imdb(args) -> int:
    from rnnkit.data import imdb
    from rnnkit.data.download import download

    dest = Path(args.dest) if args.dest else imdb.default_data_path()
    if dest.exists() and not args.force:
        print(f"{dest} already exists (use --force to download again)")
        return 0
    algorithm = "md5" if args.checksum == imdb.UPSTREAM_MD5 else "sha256"
    download(args.url, dest, args.checksum, algorithm=algorithm, progress=not args.quiet)
    print(f"saved {dest}; train with: rnnkit train imdb --data {dest} --out runs/imdb")
    return 0
