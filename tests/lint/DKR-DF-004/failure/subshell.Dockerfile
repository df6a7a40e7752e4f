# expect: 3
FROM debian:12
RUN bash -c "$(curl -fsSL https://example.com/install.sh)"
