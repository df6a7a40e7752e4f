# expect: 2
FROM debian:12
RUN echo hi
