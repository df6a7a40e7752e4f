# expect: 6
# syntax=docker/dockerfile:1
FROM debian:12
RUN <<EOF
mkdir /shared
chmod a+rwx /shared
EOF
