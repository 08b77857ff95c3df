"""Write a synthetic Simon-Says expressions npz (and the performer rig) from a rig.

Usage: python tools/make_simon_says.py RIG.npz OUT_expressions.npz [--performer OUT_rig.npz] [--seed 0]
The perturbation model is documented in facecap/tune/simon_says.py.
"""

import argparse
from pathlib import Path

from facecap.rig import load_rig, save_rig
from facecap.tune import PerformerConfig, make_simon_says, save_expressions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rig", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--performer", type=Path, help="also write the performer rig here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    expressions, performer = make_simon_says(load_rig(args.rig), PerformerConfig(seed=args.seed))
    save_expressions(expressions, args.out)
    if args.performer:
        save_rig(performer, args.performer)
    print(f"wrote {len(expressions.names)} expressions ({int(expressions.holdout.sum())} held out) to {args.out}")


if __name__ == "__main__":
    main()
