FROM debian:12
RUN chmod 1777 /scratch && chmod 755 /app && chmod u+w,g+w /data && chmod +w /x
COPY --chmod=0644 a /a
