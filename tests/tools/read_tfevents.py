#!/usr/bin/python3
"""Decodes a TensorBoard event file independently of grpo's writer, for its tests.

TFRecord framing is checked with a bitwise CRC-32C (no table), and each record is parsed as a
tensorflow.Event with Debian's python3-protobuf, from the .proto definitions in
tests/fixtures/tensorboard/ compiled by protoc at run time. Prints one JSON object per event:
{"step": N, "file_version": "..."} or {"step": N, "scalars": {"tag": value, ...}}.

usage: read_tfevents.py EVENT_FILE PROTO_DIR
"""
import importlib
import json
import math
import os
import struct
import subprocess
import sys
import tempfile


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def records(path):
    with open(path, "rb") as f:
        data = f.read()
    at = 0
    while at < len(data):
        header = data[at:at + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[at + 8:at + 12])
        if masked(crc32c(header)) != length_crc:
            sys.exit(f"{path}: bad length CRC at byte {at}")
        body = data[at + 12:at + 12 + length]
        (body_crc,) = struct.unpack("<I", data[at + 12 + length:at + 16 + length])
        if len(body) != length or masked(crc32c(body)) != body_crc:
            sys.exit(f"{path}: bad data CRC at byte {at}")
        yield body
        at += 16 + length


def main():
    path, proto_dir = sys.argv[1], sys.argv[2]
    out = tempfile.mkdtemp()
    subprocess.run(["protoc", f"--proto_path={proto_dir}", f"--python_out={out}", "summary.proto", "event.proto"],
                   check=True)
    sys.path.insert(0, out)
    event_pb2 = importlib.import_module("event_pb2")
    for body in records(path):
        event = event_pb2.Event()
        event.ParseFromString(body)
        row = {"step": event.step, "wall_time_positive": event.wall_time > 0}
        if event.WhichOneof("what") == "file_version":
            row["file_version"] = event.file_version
        elif event.WhichOneof("what") == "summary":
            row["scalars"] = {v.tag: (None if math.isnan(v.simple_value) else v.simple_value) for v in event.summary.value}
        print(json.dumps(row, sort_keys=True))


if __name__ == "__main__":
    main()
