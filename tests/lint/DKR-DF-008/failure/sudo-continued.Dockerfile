# expect: 4
FROM debian:12
RUN echo a \
 && sudo -E make install
