"""What the desk reads: audio sources and files, their channel layout, the headset link, posture."""
