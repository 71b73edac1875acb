#!/usr/bin/env bash
# Writes the seed corpora in fuzz/seeds/ from the sources beside this
# script: protobuf from text format (`protoc --encode`), JSON as written,
# each behind the leading bytes its target reads first. Rerun after editing
# a source and commit the seeds with it. PROTOC and PROTOC_INCLUDE default
# to the protoc the protoc-bin-vendored crate ships (agora-proto builds
# with it, so it is in cargo's registry once the workspace has built).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
protos=$here/../../proto
seeds=$here/../seeds
vendored=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 2 -type d \
    -name 'protoc-bin-vendored-linux-x86_64-*' | sort | tail -n 1)
protoc=${PROTOC:-$vendored/bin/protoc}
include=${PROTOC_INCLUDE:-$vendored/include}

# encode MESSAGE FILE: FILE (text format) as protobuf on stdout.
encode() {
    "$protoc" -I "$protos" -I "$include" --encode="$1" \
        mesos/v1/scheduler/scheduler.proto mesos/v1/master/master.proto \
        agora/v1/broker.proto agora/v1/admin.proto <"$2"
}

# frame FILE...: each file as one RecordIO record on stdout.
frame() {
    for file in "$@"; do
        printf '%d\n' "$(wc -c <"$file")"
        cat "$file"
    done
}

rm -rf "${seeds:?}"/{recordio,mesos_event_protobuf,mesos_event_json,devcluster_call,agora_requests}
mkdir -p "$seeds"/{recordio,mesos_event_protobuf,mesos_event_json,devcluster_call,agora_requests}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

for source in "$here"/events/*.txtpb; do
    name=$(basename "$source" .txtpb)
    encode mesos.v1.scheduler.Event "$source" >"$seeds/mesos_event_protobuf/$name"
    cp "$seeds/mesos_event_protobuf/$name" "$scratch/$name.pb"
done
for source in "$here"/events/*.json; do
    name=$(basename "$source" .json)
    tr -d '\n' <"$source" >"$seeds/mesos_event_json/$name"
    cp "$seeds/mesos_event_json/$name" "$scratch/$name.json"
done

# devcluster_call: byte 0 is the encoding (bit 0: JSON) and the API (bit 1:
# operator).
for source in "$here"/calls/*.txtpb; do
    { printf '\x00'; encode mesos.v1.scheduler.Call "$source"; } \
        >"$seeds/devcluster_call/scheduler-$(basename "$source" .txtpb).pb"
done
for source in "$here"/calls/*.json; do
    { printf '\x01'; tr -d '\n' <"$source"; } \
        >"$seeds/devcluster_call/scheduler-$(basename "$source" .json).json"
done
for source in "$here"/operator/*.txtpb; do
    { printf '\x02'; encode mesos.v1.master.Call "$source"; } \
        >"$seeds/devcluster_call/operator-$(basename "$source" .txtpb).pb"
done
for source in "$here"/operator/*.json; do
    { printf '\x03'; tr -d '\n' <"$source"; } \
        >"$seeds/devcluster_call/operator-$(basename "$source" .json).json"
done

# agora_requests: byte 0 is the request's index in the target's table, the
# number a source's name starts with; the rest of the name is the message.
for source in "$here"/requests/*.txtpb; do
    name=$(basename "$source" .txtpb)
    index=$((10#${name%%-*}))
    {
        printf "\\x$(printf '%02x' "$index")"
        encode "agora.v1.${name#*-}" "$source"
    } >"$seeds/agora_requests/$name"
done

# recordio: byte 0 the cap (128 and up: the broker's default), byte 1 how
# many chunk sizes follow, then the sizes, then the stream.
events=(subscribed heartbeat offers update rescind)
{ printf '\xff\x00'; for e in "${events[@]}"; do frame "$scratch/$e.json"; done; } \
    >"$seeds/recordio/json-stream-one-read"
{ printf '\xff\x03\x01\x07\x40'; for e in "${events[@]}"; do frame "$scratch/$e.json"; done; } \
    >"$seeds/recordio/json-stream-in-pieces"
{ printf '\xff\x02\x05\x00'; for e in "${events[@]}"; do frame "$scratch/$e.pb"; done; } \
    >"$seeds/recordio/protobuf-stream-in-pieces"
{ printf '\xff\x01\x03'; printf '0\n0\n'; frame "$scratch/heartbeat.json"; printf '120\n{"type":'; } \
    >"$seeds/recordio/empty-records-then-truncated"
{ printf '\x10\x01\x02'; frame "$scratch/heartbeat.json"; } \
    >"$seeds/recordio/record-above-the-cap"
{ printf '\xff\x01\x04'; printf '99999999999999999999\n'; } \
    >"$seeds/recordio/length-beyond-u64"
