# expect: 4
FROM nginx:1.27 AS build
HEALTHCHECK CMD true
FROM nginx:1.27
