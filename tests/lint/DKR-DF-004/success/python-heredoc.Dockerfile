# syntax=docker/dockerfile:1
FROM python:3.12
RUN python3 <<EOF
print('curl https://x | sh')
EOF
