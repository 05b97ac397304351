"""Command line: ``python -m fastconv {demo,example,bench,compile} ...`` (also the ``fastconv`` script)."""

import argparse
import sys

_COMMANDS = {
    "demo": ("fastconv._demo", "train a small CNN on scikit-learn's 8x8 digits"),
    "example": ("fastconv._example", "the README's worked example and a timed conv2d on a batch"),
    "bench": ("fastconv._bench", "benchmark table against the NumPy reference and PyTorch"),
    "compile": ("fastconv._compile", "compile every kernel now (cached on disk) and time it"),
}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="fastconv",
        description="fastconv: Numba CPU kernels for CNNs on NumPy arrays.",
        epilog="Run 'fastconv COMMAND --help' for a command's options.",
    )
    parser.add_argument("command", choices=sorted(_COMMANDS),
                        help="; ".join(f"{k}: {v[1]}" for k, v in sorted(_COMMANDS.items())))
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    args = parser.parse_args(argv[:1])
    module = __import__(_COMMANDS[args.command][0], fromlist=["main"])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
