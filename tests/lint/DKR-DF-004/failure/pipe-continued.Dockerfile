# expect: 5
FROM debian:12
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && curl -fsSL https://get.example.com \
    | bash \
 && rm -rf /var/lib/apt/lists/*
