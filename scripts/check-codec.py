#!/usr/bin/env python3
"""Checks the hand-written codecs against the schema.

daemon/net/wire_fast.c decodes Gather requests and daemon/net/encode.c
encodes Outcomes replies without protobuf-c's descriptors, so the field
numbers they use are their own copy of proto/aiod.proto. Each such file names
its numbers in one enum per message it reads or writes:

    /* decode Call; generic: none */
    enum {
        FIELD_CALL_FUNCTION = 1, /* string */
        ...
    };

The comment before the enum says which way the file goes (decode or
encode), the message as aiod.proto spells it, and after "generic:" the
message's fields the file leaves to protobuf-c's generic code ("none" when it
handles them all). Each constant is FIELD_<MESSAGE>_<FIELD> in upper case,
with the field's type as aiod.proto writes it in a comment ("repeated Value",
"TaskState"); text after a ';' in that comment is free.

This script checks, and fails with a FILE:LINE message on any breach:
  - each named number is the number of the proto field of that name, and the
    commented type is that field's type;
  - every field of a handled message is either named or listed as generic,
    never both, so a field appended to the message stops the build until the
    fast path handles it or says that protobuf-c may;
  - a decoder may list any field as generic (it declines a message holding
    one, and protobuf-c decodes it); an encoder cannot hand a field to
    protobuf-c halfway through its bytes, so it may list only the other
    members of a oneof whose member it writes (those messages are packed by
    protobuf-c instead);
  - a field of message type that no block of the same file reads or writes
    says in its comment that protobuf-c does;
  - every KEY(FIELD_..., WT_...) pairs a named field with the wire type of
    its proto type, every named field is used in some KEY(), and no key or
    field number is written as a bare literal.

Usage: scripts/check-codec.py [--proto FILE] [C_FILE...]
(defaults: proto/aiod.proto, daemon/net/wire_fast.c and daemon/net/encode.c)
"""
import argparse
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DEFAULT_PROTO = os.path.join(ROOT, "proto", "aiod.proto")
DEFAULT_CODECS = [os.path.join(ROOT, "daemon", "net", "wire_fast.c"),
                  os.path.join(ROOT, "daemon", "net", "encode.c")]

WT_VARINT, WT_FIXED64, WT_LEN, WT_FIXED32 = "WT_VARINT", "WT_FIXED64", "WT_LEN", "WT_FIXED32"
SCALAR_WIRE = {
    "int32": WT_VARINT, "int64": WT_VARINT, "uint32": WT_VARINT, "uint64": WT_VARINT,
    "sint32": WT_VARINT, "sint64": WT_VARINT, "bool": WT_VARINT,
    "fixed64": WT_FIXED64, "sfixed64": WT_FIXED64, "double": WT_FIXED64,
    "fixed32": WT_FIXED32, "sfixed32": WT_FIXED32, "float": WT_FIXED32,
    "string": WT_LEN, "bytes": WT_LEN,
}


class Field:
    def __init__(self, message, name, number, label, type_, oneof, line):
        self.message, self.name, self.number = message, name, number
        self.label, self.type, self.oneof, self.line = label, type_, oneof, line

    def type_text(self):
        return (self.label + " " if self.label else "") + self.type


class Proto:
    """The messages, fields and enums of one .proto file: enough of the
    language for aiod.proto (messages, nested ones, oneofs, enums, maps,
    reserved, options), not a full parser."""

    TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|[A-Za-z_][\w.]*|\d+|\S')

    def __init__(self, path):
        self.path = path
        self.messages = {}  # full name -> list of Field
        self.enums = set()  # full names
        with open(path, encoding="utf-8") as f:
            text = f.read()
        # Comments become blanks, keeping line numbers.
        text = re.sub(r"//[^\n]*", "", text)
        text = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
        self.toks = []
        for lineno, line in enumerate(text.split("\n"), 1):
            self.toks += [(t, lineno) for t in self.TOKEN.findall(line)]
        self.i = 0
        self.body(None)

    def fail(self, msg):
        line = self.toks[min(self.i, len(self.toks) - 1)][1] if self.toks else 0
        raise SystemExit("%s:%d: %s (scripts/check-codec.py cannot read it)" % (self.path, line, msg))

    def peek(self):
        return self.toks[self.i][0] if self.i < len(self.toks) else None

    def take(self, want=None):
        if self.i >= len(self.toks):
            self.fail("unexpected end of file")
        tok, line = self.toks[self.i]
        if want is not None and tok != want:
            self.fail("expected '%s', found '%s'" % (want, tok))
        self.i += 1
        return tok, line

    def skip_statement(self):
        depth = 0
        while True:
            tok, _ = self.take()
            if tok == "{":
                depth += 1
            elif tok == "}":
                depth -= 1
                if depth == 0:
                    return
            elif tok == ";" and depth == 0:
                return

    def skip_block(self):
        self.take("{")
        depth = 1
        while depth:
            tok, _ = self.take()
            depth += tok == "{"
            depth -= tok == "}"

    def body(self, scope, oneof=None):
        """Reads definitions up to the closing brace of `scope` (or the end
        of the file at the top)."""
        while True:
            tok = self.peek()
            if tok is None:
                if scope is not None:
                    self.fail("message %s is not closed" % scope)
                return
            if tok == "}":
                if scope is None:
                    self.fail("unbalanced '}'")
                self.take()
                return
            if tok == ";":
                self.take()
            elif tok == "message":
                self.take()
                name, _ = self.take()
                full = scope + "." + name if scope else name
                self.messages[full] = []
                self.take("{")
                self.body(full)
            elif tok == "enum":
                self.take()
                name, _ = self.take()
                self.enums.add(scope + "." + name if scope else name)
                self.skip_block()
            elif tok == "oneof" and scope:
                self.take()
                name, _ = self.take()
                self.take("{")
                self.body(scope, oneof=name)
                if oneof is None:
                    continue
                return
            elif tok in ("syntax", "package", "import", "option", "reserved", "extensions",
                         "edition"):
                self.skip_statement()
            elif tok in ("service", "extend"):
                self.take()
                self.take()
                self.skip_block()
            elif scope:
                self.field(scope, oneof)
            else:
                self.fail("unexpected '%s'" % tok)

    def field(self, scope, oneof):
        label = ""
        if self.peek() in ("repeated", "optional", "required"):
            label, _ = self.take()
        tok, line = self.take()
        if tok == "map":
            self.take("<")
            key, _ = self.take()
            self.take(",")
            value, _ = self.take()
            self.take(">")
            type_ = "map<%s, %s>" % (key, value)
        else:
            type_ = tok
        name, _ = self.take()
        self.take("=")
        number, _ = self.take()
        if not number.isdigit():
            self.fail("field %s.%s has no number" % (scope, name))
        if self.peek() == "[":
            while self.take()[0] != "]":
                pass
        self.take(";")
        self.messages[scope].append(Field(scope, name, int(number), label, type_, oneof, line))

    def resolve(self, scope, name):
        """The full name of type `name` used inside message `scope`, as
        protobuf resolves it (innermost scope first), or None."""
        name = name.lstrip(".")
        parts = scope.split(".")
        for n in range(len(parts), -1, -1):
            cand = ".".join(parts[:n] + [name])
            if cand in self.messages or cand in self.enums:
                return cand
        return None

    def kind(self, f):
        """'scalar', 'enum', 'message' or 'map' for field f."""
        if f.type.startswith("map<"):
            return "map"
        if f.type in SCALAR_WIRE:
            return "scalar"
        full = self.resolve(f.message, f.type)
        if full in self.enums:
            return "enum"
        return "message"

    def wire_types(self, f):
        """The wire types a codec may use for field f."""
        k = self.kind(f)
        if k in ("map", "message"):
            return {WT_LEN}
        one = SCALAR_WIRE[f.type] if k == "scalar" else WT_VARINT
        if f.label == "repeated" and one != WT_LEN:
            return {WT_LEN, one}  # packed, as proto3 writes it, or one by one
        return {one}


def show(path):
    """A path as messages give it: from the top of the tree when inside it."""
    path = os.path.abspath(path)
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path


def upper_snake(name):
    name = name.replace(".", "_")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


BLOCK = re.compile(r"/\*\s*(decode|encode)\s+([A-Za-z_][\w.]*)\s*;\s*generic:(.*?)\*/\s*"
                   r"enum\s*(?:\w+\s*)?\{(.*?)\}\s*;", re.S)
MARKER = re.compile(r"/\*\s*(?:decode|encode)\s+[A-Za-z_][\w.]*\s*;\s*generic:")
ENTRY = re.compile(r"\s*(\w+)\s*=\s*(\d+)\s*,?\s*/\*(.*?)\*/", re.S)
KEY_USE = re.compile(r"\bKEY\(\s*([^,()]*?)\s*,\s*([^()]*?)\s*\)")
RAW = [(re.compile(r"\b(?:num|key|field)\s*[!=]=\s*\d"),
        "a field number or key compared with a literal; use a FIELD_ name and KEY()"),
       (re.compile(r"\b\d+\s*<<\s*3\b"), "a key built from a literal; use KEY(FIELD_..., WT_...)")]


class Checker:
    def __init__(self, proto):
        self.proto = proto
        self.errors = []

    def error(self, path, line, msg):
        self.errors.append("%s:%d: %s" % (show(path), line, msg))

    def check_file(self, path):
        with open(path, encoding="utf-8") as f:
            text = f.read()

        def line_of(pos):
            return text.count("\n", 0, pos) + 1

        blocks = list(BLOCK.finditer(text))
        if len(blocks) != len(MARKER.findall(text)):
            self.error(path, 1, "a '/* decode|encode MESSAGE; generic: ... */' comment is not "
                       "followed by its enum of FIELD_ constants")
        if not blocks:
            self.error(path, 1, "no '/* decode|encode MESSAGE; generic: ... */' block: this file "
                       "names no field of proto/aiod.proto")
        named = {}  # constant -> Field
        by_message = {}
        for b in blocks:
            direction, message, generic_text, body = b.groups()
            bline = line_of(b.start())
            if message in by_message:
                self.error(path, bline, "message %s has two blocks" % message)
                continue
            fields = self.proto.messages.get(message)
            if fields is None:
                self.error(path, bline, "no message %s in %s" % (message, show(self.proto.path)))
                continue
            by_message[message] = (direction, b)
            byname = {f.name: f for f in fields}
            prefix = "FIELD_" + upper_snake(message) + "_"
            handled = {}
            pos = 0
            body_at = b.start(4)
            while True:
                m = ENTRY.match(body, pos)
                if not m:
                    break
                pos = m.end()
                const, number, comment = m.group(1), int(m.group(2)), m.group(3).strip()
                eline = line_of(body_at + m.start(1))
                if not const.startswith(prefix):
                    self.error(path, eline, "%s in the block of %s must be named %s<FIELD>"
                               % (const, message, prefix))
                    continue
                fname = const[len(prefix):].lower()
                f = byname.get(fname)
                if f is None:
                    self.error(path, eline, "%s: %s has no field '%s' in %s"
                               % (const, message, fname, show(self.proto.path)))
                    continue
                named[const] = f
                handled[fname] = (f, eline)
                if number != f.number:
                    self.error(path, eline, "%s = %d, but %s.%s is field %d in %s"
                               % (const, number, message, fname, f.number, show(self.proto.path)))
                ctype = " ".join(comment.split(";")[0].split())
                if ctype != f.type_text():
                    self.error(path, eline, "%s is commented '%s', but %s.%s is '%s' in %s"
                               % (const, ctype, message, fname, f.type_text(), show(self.proto.path)))
            if body[pos:].strip():
                self.error(path, line_of(body_at + pos), "cannot read this enum entry: want "
                           "'FIELD_%s<FIELD> = N, /* TYPE */'" % upper_snake(message))
            generic = generic_text.replace("*", " ").split()
            if generic == ["none"]:
                generic = []
            oneofs_written = {f.oneof for f, _ in handled.values() if f.oneof}
            for g in generic:
                f = byname.get(g)
                if f is None:
                    self.error(path, bline, "'generic: %s': %s has no such field in %s"
                               % (g, message, show(self.proto.path)))
                elif g in handled:
                    self.error(path, bline, "%s.%s is both named and listed as generic"
                               % (message, g))
                elif direction == "encode" and f.oneof not in oneofs_written:
                    self.error(path, bline, "%s.%s is listed as generic, but an encoder cannot "
                               "leave one field to protobuf-c: write it here (only the other "
                               "members of a oneof written here may be listed)" % (message, g))
            for f in fields:
                if f.name not in handled and f.name not in generic:
                    verb = "read" if direction == "decode" else "written"
                    self.error(path, bline, "%s.%s (field %d, %s; %s:%d) is neither %s by %s "
                               "nor listed after 'generic:' in its '%s %s' block: handle it "
                               "there%s" % (message, f.name, f.number, f.type_text(),
                                            show(self.proto.path), f.line, verb,
                                            os.path.basename(path), direction, message,
                                            ", or list it if a message holding it may go to "
                                            "protobuf-c's generic decoder" if direction == "decode"
                                            else ""))
        # Message-typed fields handled here whose message has no block here.
        for const, f in named.items():
            if self.proto.kind(f) != "message":
                continue
            target = self.proto.resolve(f.message, f.type)
            if target in by_message:
                continue
            m = re.search(r"\b%s\s*=\s*\d+\s*,?\s*/\*(.*?)\*/" % const, text, re.S)
            if m and "protobuf-c" not in m.group(1):
                self.error(path, line_of(m.start()), "%s is a %s, which no block here handles: "
                           "say in its comment that protobuf-c does ('%s; packed by "
                           "protobuf-c')" % (const, f.type, f.type_text()))
        # Every FIELD_ name is declared; every KEY() is a named field with its
        # wire type; every named field is used in one. Comments do not count.
        code = re.sub(r"/\*.*?\*/|//[^\n]*", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text,
                      flags=re.S)
        for m in re.finditer(r"\bFIELD_[A-Z0-9_]+\b", code):
            if m.group(0) not in named:
                self.error(path, line_of(m.start()), "%s is not declared in a block of this file"
                           % m.group(0))
        used = set()
        for m in KEY_USE.finditer(code):
            field_arg, wt = m.group(1), m.group(2)
            if re.match(r"#\s*define\s+KEY", code[code.rfind("\n", 0, m.start()) + 1:m.end()]):
                continue
            line = line_of(m.start())
            f = named.get(field_arg)
            if f is None:
                if not field_arg.startswith("FIELD_"):
                    self.error(path, line, "KEY(%s, ...): name the field (FIELD_...)" % field_arg)
                continue
            used.add(field_arg)
            want = self.proto.wire_types(f)
            if wt not in want:
                self.error(path, line, "KEY(%s, %s): %s.%s is '%s', sent as %s"
                           % (field_arg, wt, f.message, f.name, f.type_text(),
                              " or ".join(sorted(want))))
        for const in named:
            if const not in used:
                m = re.search(r"\b%s\b" % const, text)
                self.error(path, line_of(m.start()), "%s is named but used in no KEY(): a field "
                           "this file handles is matched or written by its key" % const)
        for pattern, msg in RAW:
            for m in pattern.finditer(code):
                self.error(path, line_of(m.start()), msg)
        return by_message


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proto", default=DEFAULT_PROTO)
    ap.add_argument("codecs", nargs="*", default=DEFAULT_CODECS)
    args = ap.parse_args()
    checker = Checker(Proto(args.proto))
    handled = {}
    for path in args.codecs:
        for message, (direction, _) in checker.check_file(path).items():
            handled.setdefault(message, []).append(direction)
    for e in checker.errors:
        print(e, file=sys.stderr)
    if checker.errors:
        print("check-codec: %d problem%s between the hand-written codecs and %s"
              % (len(checker.errors), "" if len(checker.errors) == 1 else "s",
                 show(args.proto)), file=sys.stderr)
        return 1
    print("check-codec: %s agree with %s (%s)"
          % (", ".join(show(p) for p in args.codecs), show(args.proto),
             ", ".join("%s %s" % ("/".join(d), m) for m, d in sorted(handled.items()))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
