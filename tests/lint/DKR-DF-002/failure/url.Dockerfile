# expect: 3
FROM debian:12
ADD https://example.com/install.sh /tmp/install.sh
