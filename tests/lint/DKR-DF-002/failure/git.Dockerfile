# expect: 3, 5
FROM debian:12
ADD https://github.com/moby/buildkit.git#v0.10.1 /src
COPY . /app
ADD \
    http://example.com/a.tgz /opt/
