#!/usr/bin/env python3
"""Replaces the section of a Markdown file between `<!-- NAME: begin ... -->` and
`<!-- NAME: end -->` with SECTION (which carries its own markers), or appends SECTION when
the file has none yet. The benchmark scripts write their generated sections through it.

    scripts/replace-section.py NAME FILE SECTION
"""
import re
import sys


def main(name, path, section):
    text = open(path).read()
    pattern = re.compile(r"<!-- %s: begin.*?<!-- %s: end -->" % (re.escape(name), re.escape(name)), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    open(path, "w").write(text)


if __name__ == "__main__":
    main(*sys.argv[1:4])
