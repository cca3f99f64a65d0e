"""Run folders: their files (`folder`), reading them back (`index`), and what resume continues."""
