"""The emulated Android device: ADB device protocol on TCP, a sandboxed file system and shell."""
