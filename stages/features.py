"""features stage: data/raw -> data/features/{train,val,test}.npz + spec.json."""

from pathlib import Path

from keyspot import extract, params, stage


def run():
    counts = extract.run(params.load(), Path("data/raw"), Path("data/features"))
    print("features: " + ", ".join(f"{split} {n}" for split, n in counts.items()))


if __name__ == "__main__":
    stage.main("features", run)
