distro "debian" {
  release "13" {
    image "x86_64-linux" {
      url = "https://example.org/debian.qcow2
    }
  }
}
