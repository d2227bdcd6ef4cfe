#!/usr/bin/env python3
"""Counts heap allocations per forwarded message from two callgrind dumps; used by bench/alloc-check.

    callgrind-allocs.py --short DUMP --short-messages N --long DUMP --long-messages N
                        [--clients N] [--label TEXT] [--src-root DIR] [--top N] [--limit X]

Both dumps come from one Sluice process with the same number of client connections opened and closed
in each; only the number of transactions differs. Subtracting the short run from the long one cancels
whatever logins and logouts allocate, and what is left is what forwarding itself allocates:

    ratio = (allocations(long) - allocations(short)) / (messages(long) - messages(short))

The dumps must be written with --compress-strings=no --compress-pos=no and --separate-callers=D, so
that every function name carries its D callers (`malloc'swift_slowAlloc'caller'...`): that is where the
call stacks come from. An allocation is a call into a libc allocator entry point from a function that
is not itself one (realloc(NULL, n) calling malloc is one allocation, not two).

Prints the ratio, the Sluice source lines the allocations come from and the top call stacks. Exits 1
when the ratio is at or above --limit, 0 otherwise, 2 on bad input.
"""

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys

# The lowest level: every Swift allocation (swift_allocObject -> swift_slowAlloc) and every C++ `new`
# ends in one of these.
ALLOCATORS = {
    "malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc", "memalign",
    "valloc", "pvalloc", "__libc_malloc", "__libc_calloc", "__libc_realloc", "__libc_memalign",
    "__posix_memalign", "__libc_valloc", "__libc_pvalloc",
}
# A name callgrind compressed to an id: "(12) malloc" or "(12)".
COMPRESSED = re.compile(r"^\(\d+\)( |$)")
# Shown in each stack's summary so a reader sees what kind of allocation it is.
SWIFT_RUNTIME = ("swift_allocObject", "swift_slowAlloc", "swift_allocBox", "swift_allocEmptyBox")


class Dump:
    """The call edges of one callgrind dump."""

    def __init__(self, path):
        self.path = path
        # (caller context, callee context, call-site file, call-site line) -> calls
        self.edges = collections.Counter()
        self.positions = None
        # function name (without its callers) -> the source file it is defined in
        self.files = {}
        self._parse()

    def _parse(self):
        fn = None
        fl = None
        inline = None
        pending = None  # (callee, count) between a calls= line and its cost line
        callee = None
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if pending is not None:
                    target, count = pending
                    pending = None
                    fields = line.split()
                    if fields and fields[0].isdigit():
                        site_file = inline if inline is not None else fl
                        self.edges[(fn, target, site_file, int(fields[0]))] += count
                    continue
                if line.startswith("fn="):
                    fn = line[3:].rstrip("\n")
                    inline = None
                    self.files.setdefault(base(fn), fl)
                elif line.startswith("fl="):
                    fl = line[3:].rstrip("\n")
                    inline = None
                elif line.startswith("fi=") or line.startswith("fe="):
                    inline = line[3:].rstrip("\n")
                elif line.startswith("cfn="):
                    callee = line[4:].rstrip("\n")
                elif line.startswith("calls="):
                    count = int(line[6:].split()[0])
                    pending = (callee, count)
                elif line.startswith("positions:"):
                    self.positions = line.split(":", 1)[1].split()
        if self.positions != ["line"]:
            raise SystemExit(f"{self.path}: expected 'positions: line', got {self.positions}")
        if any(name is not None and COMPRESSED.match(name) for (_, name, _, _) in self.edges):
            raise SystemExit(f"{self.path}: compressed names; run callgrind with --compress-strings=no")

    def allocations(self):
        """Allocator context -> calls, for calls from outside the allocators."""
        counts = collections.Counter()
        for (caller, callee, _, _), n in self.edges.items():
            if base(callee) in ALLOCATORS and base(caller) not in ALLOCATORS:
                counts[callee] += n
        return counts


def base(context):
    return context.split("'", 1)[0] if context else ""


class SiteIndex:
    """Finds where each frame of a stack made its call, from the edges of a dump."""

    def __init__(self, dump, src_root):
        self.src_root = src_root.rstrip("/") + "/" if src_root else None
        self.files = dump.files
        # (caller name, callee name) -> [(callee context as a tuple, file, line, calls)]
        self.by_pair = collections.defaultdict(list)
        for (caller, callee, site_file, site_line), n in dump.edges.items():
            if caller is None or callee is None:
                continue
            self.by_pair[(base(caller), base(callee))].append((tuple(callee.split("'")), site_file, site_line, n))

    def site(self, frames, k):
        """Where frames[k] called frames[k-1]: the most frequent file:line, or None."""
        known = tuple(frames[k - 1:])
        lines = collections.Counter()
        for context, site_file, site_line, n in self.by_pair.get((frames[k], frames[k - 1]), ()):
            if context[:len(known)] == known:
                lines[(site_file, site_line)] += n
        if not lines:
            return None
        (site_file, site_line), _ = lines.most_common(1)[0]
        if not site_file or site_file == "???" or site_line == 0:
            return None
        return (self.short_path(site_file), site_line)

    def short_path(self, path):
        if self.src_root and path.startswith(self.src_root):
            return path[len(self.src_root):]
        return path

    def is_ours(self, path):
        return path is not None and path.startswith("Sources/")

    def origin(self, frames, sites):
        """The innermost frame defined in Sources/: (file, line or None, function)."""
        for k, frame in enumerate(frames):
            defined_in = self.short_path(self.files.get(frame) or "")
            if not self.is_ours(defined_in):
                continue
            site = sites[k]
            if site is not None and self.is_ours(site[0]):
                return (site[0], site[1], frame)
            # The call was made from inlined library code or a compiler-generated line.
            return (defined_in, None, frame)
        return None


def demangler(names):
    """Readable names for Swift symbols, through `swift demangle` when it is there."""
    names = sorted(set(names))
    table = {name: name for name in names}
    tool = shutil.which("swift")
    if tool is None:
        return table
    try:
        result = subprocess.run(
            [tool, "demangle"], input="\n".join(names) + "\n", capture_output=True,
            text=True, timeout=120, check=True)
    except (OSError, subprocess.SubprocessError):
        return table
    lines = result.stdout.split("\n")
    if len(lines) >= len(names):
        for name, readable in zip(names, lines):
            table[name] = tidy(readable)
    return table


def tidy(name):
    """A demangled Swift name made short: no module prefixes, private discriminators or return types,
    and a specialization's type arguments kept, since they tell one specialization from another."""
    name = re.sub(r"\((\w+) in _[0-9A-F]{32}\)", r"\1", name)
    name = re.sub(r"\b(Swift|SluiceServer|SluiceCore|SluiceIO|sluice)\.", "", name)
    name = name.replace("<serialized, ", "<")
    for prefix in ("generic specialization ", "function signature specialization "):
        if name.startswith(prefix):
            rest = name[len(prefix):]
            arguments, end = balanced(rest, 0)
            if arguments is not None and rest[end:].startswith(" of "):
                name = f"{rest[end + 4:]} specialized for {arguments}"
    # The return type: everything after a top-level " -> ".
    depth = 0
    for i, c in enumerate(name):
        if c in "(<[":
            depth += 1
        elif c in ")>]" and not (c == ">" and name[i - 1] == "-"):
            depth -= 1
        elif depth == 0 and name.startswith(" -> ", i):
            return name[:i] + name[name.find(" specialized for ", i):] if " specialized for " in name[i:] else name[:i]
    return name


def balanced(text, start):
    """The bracketed group that starts at text[start] ('<'), and the index after it."""
    if start >= len(text) or text[start] != "<":
        return None, start
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "<":
            depth += 1
        elif text[i] == ">" and text[i - 1] != "-":
            depth -= 1
            if depth == 0:
                return text[start:i + 1], i + 1
    return None, start


def shorten(text, width):
    return text if len(text) <= width else text[:width - 3] + "..."


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--short", required=True)
    parser.add_argument("--short-messages", type=int, required=True)
    parser.add_argument("--long", required=True)
    parser.add_argument("--long-messages", type=int, required=True)
    parser.add_argument("--clients", type=int, default=0)
    parser.add_argument("--label", default="")
    parser.add_argument("--src-root", default=os.getcwd())
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--limit", type=float, default=0.01)
    args = parser.parse_args()

    messages = args.long_messages - args.short_messages
    if messages <= 0:
        print("callgrind-allocs: the long run must forward more messages than the short one", file=sys.stderr)
        return 2
    short = Dump(args.short)
    long = Dump(args.long)
    short_allocs = short.allocations()
    long_allocs = long.allocations()
    delta = collections.Counter()
    for context in set(short_allocs) | set(long_allocs):
        delta[context] = long_allocs[context] - short_allocs[context]
    total = sum(delta.values())
    ratio = total / messages
    label = f"{args.label}: " if args.label else ""

    print(f"{label}allocations: {sum(short_allocs.values())} in the short run "
          f"({args.short_messages} messages), {sum(long_allocs.values())} in the long run "
          f"({args.long_messages} messages)")
    print(f"{label}per forwarded message: {total} / {messages} = {ratio:.4f} (limit {args.limit})")
    if args.clients > 0:
        # What is left of the short run once its messages are paid for: logins, logouts, lending.
        per_connection = (sum(short_allocs.values()) - ratio * args.short_messages) / args.clients
        print(f"{label}per client connection (login to logout, apart from its messages): ~{per_connection:.0f}")

    index = SiteIndex(long, args.src_root)
    growing = [(n, context) for context, n in delta.items() if n > 0]
    growing.sort(key=lambda item: -item[0])
    if not growing:
        return 0 if ratio < args.limit else 1

    # Where in Sources/ each allocation starts: the deepest frame whose call site is our code.
    stacks = []
    names = []
    by_site = collections.Counter()
    for n, context in growing:
        frames = context.split("'")
        sites = [None] + [index.site(frames, k) for k in range(1, len(frames))]
        by_site[index.origin(frames, sites)] += n
        stacks.append((n, frames, sites))
        names.extend(frames)
    readable = demangler(names)
    print(f"\n{label}each count is long run minus short run; stacks are cut at {len(growing[0][1].split(chr(39))) - 1} callers")

    per_k = 1000.0 / messages
    print(f"\n{label}where in Sources/ the extra allocations are made (calls per 1000 messages):")
    for site, n in by_site.most_common(args.top):
        if site is None:
            where = "(no Sources/ frame within the recorded depth)"
        elif site[1] is None:
            where = f"{site[0]}, in {shorten(readable.get(site[2], site[2]), 80)} (call line not recorded)"
        else:
            where = f"{site[0]}:{site[1]}, in {shorten(readable.get(site[2], site[2]), 80)}"
        print(f"  {n:8d}  {n * per_k:8.2f}  {where}")

    print(f"\n{label}top {min(args.top, len(stacks))} allocating call stacks "
          f"(innermost first; the location is where that frame calls the one above it):")
    for n, frames, sites in stacks[:args.top]:
        via = next((f for f in frames if f in SWIFT_RUNTIME), frames[0])
        print(f"  {n} calls ({n * per_k:.2f} per 1000 messages), {frames[0]} via {via}")
        for k, frame in enumerate(frames):
            site = sites[k]
            where = f"  [{site[0]}:{site[1]}]" if site else ""
            print(f"      {shorten(readable.get(frame, frame), 150)}{where}")
    return 0 if ratio < args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
