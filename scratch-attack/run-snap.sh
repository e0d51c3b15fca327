#!/bin/sh
# Runs a scratch-attack script against a snapshot of the committed HEAD (the working tree was being edited concurrently).
rm -rf /tmp/bh-snap/scratch-attack && cp -r /work/main/scratch-attack /tmp/bh-snap/scratch-attack
cd /tmp/bh-snap && exec npx tsx "scratch-attack/$1"
