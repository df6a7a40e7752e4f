FROM scratch
ADD rootfs.tar.xz /
