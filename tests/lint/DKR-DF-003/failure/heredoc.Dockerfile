# expect: 4
# syntax=docker/dockerfile:1
FROM debian:12
ADD <<EOT /etc/motd
hello
EOT
