# Portcullis as a container image. Built offline from wheels prepared on the host by
# scripts/build-portcullis-image.sh (`make image`): nothing is downloaded during `docker build`.
#
#   docker run --rm -v "$PWD:/src:ro" portcullis:local lint Dockerfile compose.yaml
#   docker run --rm portcullis:local rules CIS-5.5
#
# The default user is portcullis (uid 10001), not root: linting, `rules`, `image docker-archive:…` and
# `db` need no privilege. Auditing the host needs root's view of the host: the line in docs/container.md
# adds --user 0, the Docker socket and the host paths, read-only, and nothing else.
#
# BASE must be a Debian bookworm root with python3 3.11 (the wheels are cp311, glibc); the default is the
# public one. Offline, make test builds it FROM portcullis-test/python:bookworm (a debootstrap'd root).
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS install
COPY build/image/wheels/ /wheels/
# pip runs from its own wheel (a debootstrap'd python3 has no pip); --no-index: the wheels or nothing.
RUN set -eu; set -- /wheels/pip-*.whl; \
    python3 -m venv --without-pip /opt/portcullis; \
    /opt/portcullis/bin/python "$1/pip" install --no-index --no-cache-dir --disable-pip-version-check \
        --find-links /wheels -r /wheels/requirements.lock; \
    /opt/portcullis/bin/python "$1/pip" install --no-index --no-cache-dir --disable-pip-version-check \
        --no-deps /wheels/portcullis-*.whl; \
    /opt/portcullis/bin/portcullis --version

FROM ${BASE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="portcullis" \
      org.opencontainers.image.description="CIS Docker Benchmark audit, image analysis and Dockerfile/compose lint" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=install /opt/portcullis /opt/portcullis
RUN useradd --system --uid 10001 --user-group --home-dir /home/portcullis --create-home \
        --shell /usr/sbin/nologin portcullis \
 && install -d -o 10001 -g 10001 -m 0755 /var/cache/portcullis /src
ENV PATH=/opt/portcullis/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PORTCULLIS_DB=/var/cache/portcullis/vuln.db
USER 10001:10001
WORKDIR /src
ENTRYPOINT ["portcullis"]
CMD ["--help"]
