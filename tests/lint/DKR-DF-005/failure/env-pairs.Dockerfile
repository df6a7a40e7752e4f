# expect: 3
FROM debian:12
ENV APP_ENV=prod DB_PASSWORD=hunter2
