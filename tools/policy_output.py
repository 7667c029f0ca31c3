"""What the policy generators share: the command line, and writing or checking the policy file."""

import argparse
import difflib
import sys


def run(tool, doc, policy, generate):
    """generate(samples_dir) -> (text, problems, summary). Returns the exit status."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--out", default=policy)
    ap.add_argument("--check", action="store_true",
                    help="regenerate and compare with the committed policy")
    ap.add_argument("--samples", help="keep the saved samples in this directory")
    a = ap.parse_args()
    text, problems, summary = generate(a.samples)
    if problems:
        for p in problems:
            print("%s: %s" % (tool, p), file=sys.stderr)
        return 1
    if a.check:
        with open(policy) as f:
            old = f.read()
        if old != text:
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), text.splitlines(True),
                                                       policy, "regenerated"))
            print("%s: %s is out of date" % (tool, policy), file=sys.stderr)
            return 1
        print("%s: %s is current (%s)" % (tool, policy, summary))
        return 0
    with open(a.out, "w") as f:
        f.write(text)
    print("%s: wrote %s (%s)" % (tool, a.out, summary))
    return 0
