# expect: 5
# syntax=docker/dockerfile:1
FROM debian:12
RUN <<EOF
sudo chown app /srv
EOF
