# expect: 6
# syntax=docker/dockerfile:1
FROM debian:12
RUN <<EOF
set -e
wget -qO- https://example.com/s.sh | sudo sh
EOF
